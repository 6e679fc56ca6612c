"""Monitoring events leave opsgraph two ways, both through the webhook outbox in the caller's
transaction: to webhook subscriptions (each signed with its own secret) and to the channels a
rule names (signed with the installation's webhook secret). GraphQL subscribers get the same
event after commit."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent, WebhookDelivery, WebhookSubscription
from app.kernel import effects
from app.kernel.errors import InvalidInput, NotFound
from app.platform import clock
from app.services.agents import announce
from app.services.monitoring.config import config_of
from app.services.webhooks import deliveries as webhooks
from app.services.webhooks import outbound

log = logging.getLogger(__name__)

EVENTS = (
    "monitoring.alert_triggered",
    "monitoring.alert_resolved",
    "monitoring.agent_status_changed",
    "monitoring.agent_restarted",
    "monitoring.threshold_exceeded",
)
CHANNELS = ("webhook", "slack", "email", "pagerduty")
MAX_SUBSCRIPTIONS = 100


def emit(
    session: AsyncSession,
    event: str,
    data: dict[str, Any],
    *,
    object_id: str,
    tenant_id: str | None,
    subscribers: list[WebhookSubscription],
    channels: Sequence[str] = (),
) -> None:
    """Record deliveries of one event to every matching subscription and named channel."""
    config = config_of(session)
    payload = {"event": event, "occurred_at": clock.now().isoformat(), "data": data}
    for sub in subscribers:
        if event not in sub.events:
            continue
        if sub.tenant_id is not None and sub.tenant_id != tenant_id:
            continue
        webhooks.schedule(
            session,
            kind="monitoring",
            object_id=object_id,
            url=sub.url,
            payload=payload,
            queue=config.queue,
            tenant_id=sub.tenant_id,
            subscription_id=sub.id,
        )
    for channel in dict.fromkeys(channels):
        url = config.channel_urls.get(channel)
        if not url:
            log.info("alert channel %r is not configured: %s not sent there", channel, event)
            continue
        webhooks.schedule(
            session,
            kind=CHANNEL_KIND,
            object_id=object_id,
            url=url,
            payload={**payload, "channel": channel},
            queue=config.queue,
            tenant_id=tenant_id,
        )


async def load_subscribers(session: AsyncSession) -> list[WebhookSubscription]:
    return list((await session.execute(select(WebhookSubscription))).scalars())


CHANNEL_KIND = "alert_channel"  # deliveries to an operator-configured channel


def publish(session: AsyncSession, kind: str, key: str, data: dict[str, Any]) -> None:
    """For GraphQL subscribers, after commit."""
    effects.record(session, effects.Published(kind, key, data))


# --- subscriptions --------------------------------------------------------------------------


async def subscribe(
    *,
    session: AsyncSession,
    url: str,
    events: list[str],
    actor: str,
    tenant_id: str | None,
    description: str | None = None,
    secret: str | None = None,
) -> WebhookSubscription:
    """A new subscription; its secret (given or generated) is shown to the caller once."""
    config = config_of(session)
    outbound.check_url(url, allow_private=config.allow_private_webhooks, field="url")
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise InvalidInput(
            f"events must be a non-empty list of {', '.join(EVENTS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            field="events",
        )
    if secret is not None and not 16 <= len(secret) <= 128:
        raise InvalidInput("secret must be 16 to 128 characters", field="secret")
    # the cap is per tenant (unscoped credentials share the installation's), counted under a
    # lock per tenant so concurrent creates cannot pass it together
    scope = tenant_id if tenant_id is not None else ""
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtext("webhook-subscriptions:" + scope)))
    )
    owned = WebhookSubscription.tenant_id
    count = await session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(owned.is_(None) if tenant_id is None else owned == tenant_id)
    )
    if (count or 0) >= MAX_SUBSCRIPTIONS:
        raise InvalidInput(f"at most {MAX_SUBSCRIPTIONS} subscriptions per tenant", field="url")
    sub = WebhookSubscription(
        id=uuid.uuid4(),
        url=url,
        events=list(dict.fromkeys(events)),
        secret=secret or "whsec_" + secrets.token_urlsafe(32),
        description=description,
        tenant_id=tenant_id,
        created_by=actor,
        created_at=clock.now(),
    )
    session.add(sub)
    await session.flush()
    return sub


def url_shown(
    sub: WebhookSubscription, *, tenant_id: str | None, is_admin: bool, can_operate: bool
) -> str:
    """A subscription URL is often a bearer secret (a Slack hook): in full only to the admins
    of the tenant that owns it (tenant admins for a tenant's, unscoped admins for the
    installation's); everyone else sees scheme and host only (`https://hooks.slack.com/…`)."""
    owner = (
        tenant_id is None and is_admin
        if sub.tenant_id is None
        else tenant_id == sub.tenant_id and can_operate
    )
    if owner:
        return sub.url
    try:
        parts = urlsplit(sub.url)
        return f"{parts.scheme}://{parts.hostname or ''}/…"
    except ValueError:
        return "…"


async def list_subscriptions(
    *, session: AsyncSession, tenant_id: str | None
) -> list[WebhookSubscription]:
    stmt = select(WebhookSubscription).order_by(WebhookSubscription.created_at)
    if tenant_id is not None:
        stmt = stmt.where(WebhookSubscription.tenant_id == tenant_id)
    return list((await session.execute(stmt)).scalars())


async def get_subscription(
    *, session: AsyncSession, subscription_id: uuid.UUID, tenant_id: str | None
) -> WebhookSubscription:
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None or (tenant_id is not None and sub.tenant_id != tenant_id):
        raise NotFound(
            f"webhook subscription {subscription_id} not found",
            field="subscription_id",
            code="subscription_not_found",
        )
    return sub


async def unsubscribe(
    *, session: AsyncSession, subscription_id: uuid.UUID, tenant_id: str | None
) -> None:
    """Delete it; its deliveries not yet sent are dropped, its delivery log stays."""
    sub = await get_subscription(
        session=session, subscription_id=subscription_id, tenant_id=tenant_id
    )
    await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.subscription_id == sub.id, WebhookDelivery.status == "pending"
        )
    )
    await session.delete(sub)
    await session.flush()


async def deliveries(
    *, session: AsyncSession, subscription_id: uuid.UUID, limit: int = 50
) -> list[WebhookDelivery]:
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def secret_of(session: AsyncSession, subscription_id: uuid.UUID) -> str | None:
    sub = await session.get(WebhookSubscription, subscription_id)
    return None if sub is None else sub.secret


async def agent_status(
    session: AsyncSession,
    agent: Agent,
    status: str,
    subscribers: list[WebhookSubscription] | None = None,
) -> bool:
    """Announce an agent's derived status when it differs from the last one observed (GraphQL
    subscribers and monitoring.agent_status_changed). `subscribers` None: loaded if needed."""
    data = announce.observe(session, agent, status)
    if data is None:
        return False
    await _announced(session, agent, announce.STATUS_CHANGED, data, subscribers)
    return True


# What agents' announcements are as monitoring events (app/services/agents/announce.py)
AGENT_EVENTS = {
    announce.STATUS_CHANGED: "monitoring.agent_status_changed",
    announce.RESTARTED: "monitoring.agent_restarted",
}


async def _announced(
    session: AsyncSession,
    agent: Agent,
    what: str,
    data: dict[str, Any],
    subscribers: list[WebhookSubscription] | None = None,
) -> None:
    emit(
        session,
        AGENT_EVENTS[what],
        data,
        object_id=agent.id,
        tenant_id=agent.tenant_id,
        subscribers=subscribers if subscribers is not None else await load_subscribers(session),
    )


def register() -> None:
    """Hear the agents' announcements as monitoring events (app/edge/domains.py)."""
    announce.listen("monitoring", _announced)
