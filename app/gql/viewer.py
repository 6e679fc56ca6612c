"""Who the caller is, as the API sees it: what a client (the console) needs to show only the
actions the credential may take."""

from __future__ import annotations

import strawberry

from app.auth.principals import ADMIN, OPERATE, PLATFORM_READ
from app.gql.context import Info
from app.gql.permissions import CanRead


@strawberry.type
class Viewer:
    subject: str
    role: str
    tenant_id: str | None
    can_operate: bool = strawberry.field(description="Submit, cancel, retry, acknowledge, ...")
    can_admin: bool = strawberry.field(
        description="Clear, purge, overwrite: installation-wide, so never a tenant credential."
    )
    can_read_platform: bool = strawberry.field(
        description="Installation-wide views (pipeline, DLQ, workers): unscoped credentials."
    )


@strawberry.type
class ViewerQueries:
    @strawberry.field(permission_classes=[CanRead], description="The caller's credential.")
    def viewer(self, info: Info) -> Viewer:
        p = info.context.principal
        assert p is not None  # CanRead admitted it
        return Viewer(
            subject=p.subject,
            role=p.role,
            tenant_id=p.tenant_id,
            can_operate=p.allows(OPERATE),
            can_admin=p.allows(ADMIN),
            can_read_platform=p.allows(PLATFORM_READ),
        )
