"""Webhook subscriptions to seed 004's monitoring events (beyond the seed's table of event
names): create (the secret is shown once), list, delete, and each one's delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from app.auth.principals import Permission, Principal
from app.db.models import WebhookDelivery, WebhookSubscription
from app.edge.uow import read_only
from app.kernel.bounds import DELIVERIES_LIMIT_MAX
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Operator, Reader, State
from app.rest.params import PathId
from app.rest.refusals import reading, writing
from app.rest.shapes import columns
from app.services.monitoring import notify

router = APIRouter(prefix="/api/v1/monitoring/webhooks", tags=["AI Monitoring: webhooks"])
NOT_FOUND = documented((404, "subscription_not_found"))


class SubscriptionIn(BaseModel):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    events: list[
        Literal[
            "monitoring.alert_triggered",
            "monitoring.alert_resolved",
            "monitoring.agent_status_changed",
            "monitoring.agent_restarted",
            "monitoring.threshold_exceeded",
        ]
    ] = Field(min_length=1, max_length=5)
    description: Annotated[str | None, Field(max_length=500)] = None
    secret: Annotated[str | None, Field(min_length=16, max_length=128)] = None


def subscription_out(
    s: WebhookSubscription, principal: Principal, *, with_secret: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(s.id),
        "url": notify.url_shown(
            s,
            tenant_id=principal.tenant_id,
            is_admin=principal.can(Permission.ADMIN),
            can_operate=principal.can(Permission.OPERATE),
        ),
        "events": s.events,
        "description": s.description,
        "tenant_id": s.tenant_id,
        "created_by": s.created_by,
        "created_at": s.created_at,
    }
    if with_secret:
        out["secret"] = s.secret
    return out


DELIVERY = ("event", "status", "attempts", "last_status_code", "last_error", "created_at")


def delivery_out(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": str(d.id),
        **columns(d, *DELIVERY),
        "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
        "finished_at": d.finished_at,
    }


@router.post("", status_code=201, summary="Subscribe to monitoring events")
async def subscribe(body: SubscriptionIn, state: State, principal: Operator) -> Any:
    """Deliveries are signed: `X-Opsgraph-Signature: sha256=<hex HMAC-SHA256 of
    "<X-Opsgraph-Timestamp>.<body>" with this subscription's secret>`. The secret is in this
    answer only."""
    async with writing(state, fail) as session:
        sub = await notify.subscribe(
            session=session,
            **body.model_dump(),
            actor=principal.subject,
            tenant_id=principal.tenant_id,
        )
        return subscription_out(sub, principal, with_secret=True)


@router.get("", summary="List webhook subscriptions")
async def list_subscriptions(state: State, principal: Reader) -> Any:
    async with read_only(state.sessionmaker) as session:
        subs = await notify.list_subscriptions(session=session, tenant_id=principal.tenant_id)
    return {
        "subscriptions": [subscription_out(s, principal) for s in subs],
        "events": list(notify.EVENTS),
    }


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=NOT_FOUND,
    summary="Unsubscribe",
)
async def unsubscribe(subscription_id: PathId, state: State, principal: Operator) -> Response:
    async with writing(state, fail) as session:
        await notify.unsubscribe(
            session=session, subscription_id=subscription_id, tenant_id=principal.tenant_id
        )
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries", responses=NOT_FOUND, summary="A subscription's deliveries"
)
async def deliveries(
    subscription_id: PathId,
    state: State,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=DELIVERIES_LIMIT_MAX)] = 50,
) -> Any:
    """Newest first: each delivery's event, status, attempts and last outcome."""
    async with reading(state, fail) as session:
        await notify.get_subscription(
            session=session, subscription_id=subscription_id, tenant_id=principal.tenant_id
        )
        found = await notify.deliveries(
            session=session, subscription_id=subscription_id, limit=limit
        )
    return {"deliveries": [delivery_out(d) for d in found]}
