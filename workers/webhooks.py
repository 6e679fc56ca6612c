"""Webhook delivery from the outbox (`webhook_deliveries`). A nudged arq job sends a new
delivery at once; the relay loop in every worker sends whatever is due (retries, and
deliveries whose nudge was lost with Redis). Each attempt first claims its row, so no attempt
is sent twice; the URL is resolved and checked before connecting (SSRF), the checked address
is the one connected to, and redirects are not followed. Every attempt runs under one overall
deadline (`OPSGRAPH_WEBHOOK_TIMEOUT_SECONDS`: resolving, connecting, sending and the answer's
status line together), an answer's body is never read beyond RESPONSE_KEEP bytes, and attempts
run independently (a slow receiver holds one of RELAY_IN_FLIGHT places, never the relay). A
claim's lease is the deadline plus LEASE_MARGIN_SECONDS, so a delivery is never in flight
twice."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError

from app.db.models import WebhookDelivery
from app.edge.uow import transaction
from app.services.monitoring import notify
from app.services.webhooks import deliveries as webhooks
from app.services.webhooks import outbound
from workers.context import WorkerState, state_of

log = logging.getLogger(__name__)
RELAY_IN_FLIGHT = 20  # attempts one worker's relay has under way at once
LEASE_MARGIN_SECONDS = 30.0  # a claim's lease outlives its attempt's deadline by this much
RESPONSE_KEEP = 64 * 1024  # bytes of an answer's body read at most (then the stream closes)


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


async def _claim(
    state: WorkerState, delivery_id: uuid.UUID | None, limit: int = 1
) -> list[WebhookDelivery]:
    lease = state.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
    async with transaction(state.sessionmaker) as session:
        return await webhooks.claim(
            session=session,
            lease_seconds=lease,
            queues=state.beat.queues,
            delivery_id=delivery_id,
            limit=limit,
        )


async def relay_forever(state: WorkerState) -> None:
    """Claim as many due deliveries as there are free places and send each on its own."""
    in_flight: set[asyncio.Task[str]] = set()
    try:
        while True:
            room = RELAY_IN_FLIGHT - len(in_flight)
            try:
                due = await _claim(state, None, limit=room) if room > 0 else []
            except Exception as exc:  # PostgreSQL away: try again next tick
                log.warning("webhook relay pass failed: %s", exc)
                due = []
            for delivery in due:
                task = asyncio.create_task(attempt(state, delivery))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if not due or len(due) < room:
                await asyncio.sleep(state.settings.outbox_poll_seconds)
    finally:
        # stopping: attempts under way are dropped; their leases expire and they go again
        for task in in_flight:
            task.cancel()


class _Answered(Exception):
    """The receiver answered, but not with success: the attempt may be made again."""

    def __init__(self, error: str, code: int) -> None:
        super().__init__(error)
        self.error, self.code = error, code


async def _target(state: WorkerState, delivery: WebhookDelivery) -> outbound.Target:
    settings = state.settings
    if delivery.kind == notify.CHANNEL_KIND:
        # an operator's channel: public or on the operator's allow-list, whatever the switch
        # for user-given URLs says
        return await outbound.resolve(
            delivery.url,
            allow_private=False,
            allow_list=outbound.AllowList.parse(settings.alert_channel_allowed_targets),
        )
    return await outbound.resolve(
        delivery.url, allow_private=settings.webhook_allow_private_networks
    )


async def _send(
    state: WorkerState, delivery: WebhookDelivery, body: bytes
) -> tuple[str, str | None, int | None]:
    """Resolve, check and send: what ends the delivery (delivered, refused, cancelled) as
    (status, error, code); _Answered or an HTTP error for what may be tried again."""
    try:
        target = await _target(state, delivery)
    except outbound.RefusedURL as exc:
        log.warning("webhook %s refused: %s", delivery.id, exc)
        return "refused", str(exc), None
    secret = state.settings.webhook_secret
    if delivery.subscription_id is not None:
        async with transaction(state.sessionmaker) as session:
            found = await notify.secret_of(session, delivery.subscription_id)
        if found is None:
            return "cancelled", "subscription deleted", None
        secret = found
    headers = {
        "Host": target.host,
        "Content-Type": "application/json",
        webhooks.EVENT_HEADER: delivery.event,
        **webhooks.sign(secret, body),
    }
    extensions = {"sni_hostname": target.server_name} if target.url.startswith("https") else {}
    async with state.http.stream(
        "POST",
        target.url,
        content=body,
        headers=headers,
        timeout=state.settings.webhook_timeout_seconds,
        follow_redirects=False,
        extensions=extensions,
    ) as response:
        code = response.status_code
        kept = 0
        async for chunk in response.aiter_raw():  # never a whole body of any size
            kept += len(chunk)
            if kept >= RESPONSE_KEEP:
                break
    if code < 300:
        return "delivered", None, code
    error = f"receiver answered {code}"
    if 300 <= code < 400:
        error += " (redirects are not followed)"
    raise _Answered(error, code)


async def attempt(state: WorkerState, delivery: WebhookDelivery) -> str:
    settings = state.settings
    deadline = settings.webhook_timeout_seconds
    code: int | None = None
    try:
        # the outcome is recorded after the deadline's scope: a slow write is not a timeout
        async with asyncio.timeout(deadline):
            status, error, code = await _send(state, delivery, delivery.body.encode())
        await _settle(state, delivery, status, error=error, status_code=code)
        return f"{status}: {error}" if error else f"{status} ({code})"
    except _Answered as answered:
        error, code = answered.error, answered.code
    except TimeoutError:
        error = f"receiver did not answer within {deadline:g} s"
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
