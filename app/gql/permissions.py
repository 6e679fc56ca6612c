"""Permission classes; every root field carries one (a test fails when one is missing)."""

from __future__ import annotations

from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.permission import BasePermission

from app.auth import Permission


class _Needs(BasePermission):
    needed: ClassVar[Permission]

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        # Raise instead of returning False: the instance is shared by concurrent requests,
        # so the message cannot live on it.
        principal = info.context.principal
        if principal is None:
            raise GraphQLError("authentication required", extensions={"code": "UNAUTHENTICATED"})
        if not principal.can(self.needed):
            raise GraphQLError(
                f"role {principal.role!r} may not {self.needed.value}",
                extensions={"code": "FORBIDDEN"},
            )
        return True


class CanRead(_Needs):
    needed = Permission.READ


class CanOperate(_Needs):
    needed = Permission.OPERATE


class CanAdmin(_Needs):
    needed = Permission.ADMIN


class _Platform(_Needs):
    """Installation-wide resources (the camera pipeline, every queue's DLQ, system health)
    are not for tenant-scoped credentials."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        super().has_permission(source, info, **kwargs)
        if info.context.principal.tenant_id is not None:
            raise GraphQLError(
                "installation-wide resource: not for tenant-scoped credentials",
                extensions={"code": "FORBIDDEN"},
            )
        return True


class CanReadPlatform(_Platform):
    needed = Permission.READ


class CanOperatePlatform(_Platform):
    needed = Permission.OPERATE
