"""Webhook subscriptions to monitoring events in GraphQL: list with delivery logs, create (the
secret is answered once), delete."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from app.auth.principals import Permission
from app.db.models import WebhookSubscription as SubscriptionRow
from app.gql.ai_monitoring.alerts import MonitoringError
from app.gql.context import Info
from app.gql.errors import CaptureErrors
from app.gql.forward import forward
from app.gql.permissions import CanOperate, CanRead
from app.kernel.bounds import DELIVERIES_LIMIT_MAX
from app.kernel.errors import NotFound
from app.services.monitoring import notify


@strawberry.type
class WebhookDelivery:
    id: strawberry.ID
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@strawberry.type
class WebhookSubscription:
    row: strawberry.Private[SubscriptionRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="In full for the owning tenant's admins; else masked.")
    def url(self, info: Info) -> str:
        p = info.context.principal
        return notify.url_shown(
            self.row,
            tenant_id=p.tenant_id if p else None,
            is_admin=bool(p and p.can(Permission.ADMIN)),
            can_operate=bool(p and p.can(Permission.OPERATE)),
        )

    @strawberry.field
    def events(self) -> list[str]:
        return list(self.row.events)

    @strawberry.field
    def description(self) -> str | None:
        return self.row.description

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="Newest first.")
    async def deliveries(self, info: Info, limit: int = 20) -> list[WebhookDelivery]:
        async with info.context.reading() as session:
            found = await notify.deliveries(
                session=session,
                subscription_id=self.row.id,
                limit=max(1, min(limit, DELIVERIES_LIMIT_MAX)),
            )
        return [forward(WebhookDelivery, d) for d in found]


@strawberry.type
class WebhookQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        async with info.context.reading() as session:
            subs = await notify.list_subscriptions(
                session=session, tenant_id=info.context.tenant_id
            )
        return [WebhookSubscription(row=s) for s in subs]

    @strawberry.field(
        permission_classes=[CanRead], description="The event names a subscription may take."
    )
    def webhook_events(self) -> list[str]:
        return list(notify.EVENTS)


@strawberry.type
class SubscribePayload:
    subscription: WebhookSubscription | None
    secret: str | None = strawberry.field(
        description="HMAC-SHA256 key of this subscription's signatures; answered only here."
    )
    errors: list[MonitoringError]


@strawberry.type
class UnsubscribePayload:
    deleted: bool
    errors: list[MonitoringError]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def create_webhook_subscription(
        self,
        info: Info,
        url: str,
        events: list[str],
        description: str | None = None,
        secret: str | None = None,
    ) -> SubscribePayload:
        sub = await info.context.act_as_caller(
            notify.subscribe, url=url, events=events, description=description, secret=secret
        )
        return SubscribePayload(
            subscription=WebhookSubscription(row=sub), secret=sub.secret, errors=[]
        )

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def delete_webhook_subscription(
        self, info: Info, id: strawberry.ID
    ) -> UnsubscribePayload:
        try:
            subscription_id = uuid.UUID(str(id))
        except ValueError:
            raise NotFound(
                f"webhook subscription {id} not found", field="id", code="subscription_not_found"
            ) from None
        await info.context.act(notify.unsubscribe, subscription_id=subscription_id)
        return UnsubscribePayload(deleted=True, errors=[])
