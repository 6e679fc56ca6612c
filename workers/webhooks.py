"""Webhook delivery from the outbox (`webhook_deliveries`). A nudged arq job sends a new
delivery at once; the relay loop in every worker sends whatever is due (retries, and
deliveries whose nudge was lost with Redis). Each attempt first claims its row, so no attempt
is sent twice; the URL is resolved and checked before connecting (SSRF), the checked address
is the one connected to, and redirects are not followed."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError

from app.db.models import WebhookDelivery
from app.services import outbound, webhooks
from app.services.monitoring import notify
from app.uow import transaction
from workers.context import WorkerState, state_of

log = logging.getLogger(__name__)
RELAY_BATCH = 20


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str:
    """The nudge: attempt one delivery now if it is still due and nobody holds it."""
    state = state_of(ctx)
    try:
        claimed = await _claim(state, uuid.UUID(delivery_id))
    except DBAPIError:
        return "postponed: the relay will send it"
    if not claimed:
        return "not due"
    return await attempt(state, claimed[0])


async def _claim(state: WorkerState, delivery_id: uuid.UUID | None) -> list[WebhookDelivery]:
    lease = state.settings.webhook_timeout_seconds + 30
    async with transaction(state.sessionmaker) as session:
        return await webhooks.claim(
            session=session,
            lease_seconds=lease,
            queues=state.beat.queues,
            delivery_id=delivery_id,
            limit=RELAY_BATCH,
        )


async def relay_forever(state: WorkerState) -> None:
    while True:
        try:
            due = await _claim(state, None)
            if due:
                await asyncio.gather(*(attempt(state, d) for d in due))
                continue  # there may be more
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL away: try again next tick
            log.warning("webhook relay pass failed: %s", exc)
        await asyncio.sleep(state.settings.outbox_poll_seconds)


async def attempt(state: WorkerState, delivery: WebhookDelivery) -> str:
    settings = state.settings
    body = delivery.body.encode()
    error: str | None = None
    code: int | None = None
    try:
        if delivery.kind == notify.CHANNEL_KIND:
            # an operator's channel: public or on the operator's allow-list, whatever the
            # switch for user-given URLs says
            target = await outbound.resolve(
                delivery.url,
                allow_private=False,
                allow_list=outbound.AllowList.parse(settings.alert_channel_allowed_targets),
            )
        else:
            target = await outbound.resolve(
                delivery.url, allow_private=settings.webhook_allow_private_networks
            )
    except outbound.RefusedURL as exc:
        log.warning("webhook %s refused: %s", delivery.id, exc)
        await _settle(state, delivery, "refused", error=str(exc))
        return f"refused: {exc}"
    secret = settings.webhook_secret
    if delivery.subscription_id is not None:
        async with transaction(state.sessionmaker) as session:
            found = await notify.secret_of(session, delivery.subscription_id)
        if found is None:
            await _settle(state, delivery, "cancelled", error="subscription deleted")
            return "cancelled: subscription deleted"
        secret = found
    headers = {
        "Host": target.host,
        "Content-Type": "application/json",
        webhooks.EVENT_HEADER: delivery.event,
        **webhooks.sign(secret, body),
    }
    extensions = {"sni_hostname": target.server_name} if target.url.startswith("https") else {}
    try:
        response = await state.http.post(
            target.url,
            content=body,
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            extensions=extensions,
        )
        code = response.status_code
        if code < 300:
            await _settle(state, delivery, "delivered", status_code=code)
            return f"delivered ({code})"
        error = f"receiver answered {code}"
        if 300 <= code < 400:
            error += " (redirects are not followed)"
    except httpx.HTTPError as exc:
        error = f"receiver unreachable: {exc!r}"
    if delivery.attempts >= settings.webhook_max_attempts:
        log.warning(
            "webhook %s abandoned after %d attempts: %s", delivery.id, delivery.attempts, error
        )
        await _settle(state, delivery, "failed", error=error, status_code=code)
        return f"abandoned: {error}"
    await _settle(
        state,
        delivery,
        "pending",
        error=error,
        status_code=code,
        retry_in=state.policy.delay(delivery.attempts),
    )
    return f"will retry: {error}"


async def _settle(
    state: WorkerState,
    delivery: WebhookDelivery,
    status: str,
    *,
    error: str | None = None,
    status_code: int | None = None,
    retry_in: float | None = None,
) -> None:
    # If this write fails the lease expires and the attempt is made again: at-least-once.
    async with transaction(state.sessionmaker) as session:
        await webhooks.settle(
            session=session,
            delivery_id=delivery.id,
            status=status,
            error=error,
            status_code=status_code,
            retry_in=retry_in,
        )
