"""Webhooks: payloads, HMAC-SHA256 signatures, and the delivery records (the outbox) that
workers claim, attempt and settle. The HTTP call itself happens in the workers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task, WebhookDelivery, Workflow
from app.kernel import effects
from app.services.rows import attributes

SIGNATURE_HEADER = "X-Opsgraph-Signature"
TIMESTAMP_HEADER = "X-Opsgraph-Timestamp"
EVENT_HEADER = "X-Opsgraph-Event"


# what a notification tells of its task or workflow besides its id, time and reference
_TASK_FIELDS = ("task_type", "operation", "status", "queue", "result", "errors", "attempts")
_TASK_SPENT = ("dead_lettered", "input_tokens", "output_tokens", "cost_usd")
_WORKFLOW_FIELDS = ("name", "status", "result", "error_message", "errors")
_WORKFLOW_STEPS = ("completed_steps", "total_steps")


def notify_task(session: AsyncSession, task: Task) -> None:
    """Record the notification of a task's outcome to its `webhook_url`, if it has one (sent
    by the workers of its queue)."""
    _notify(session, "task", task, task.queue, *_TASK_FIELDS, *_TASK_SPENT)


def notify_workflow(session: AsyncSession, wf: Workflow, *, queue: str) -> None:
    """Record the notification of a workflow's outcome to its `webhook_url`, if it has one."""
    _notify(session, "workflow", wf, queue, *_WORKFLOW_FIELDS, *_WORKFLOW_STEPS)


def _notify(
    session: AsyncSession, kind: str, row: Task | Workflow, queue: str, *fields: str
) -> None:
    """The body: the event (the object's kind and status) and the object's `fields`, with its
    id, completion time and the caller's reference."""
    if not row.webhook_url:
        return
    payload = {
        "event": f"{kind}.{row.status.lower()}",
        kind: {
            "id": str(row.id),
            **attributes(row, *fields),
            "completed_at": row.completed_at.isoformat() if row.completed_at else None,
            "origin_reference": row.origin_reference,
        },
    }
    schedule(
        session,
        kind=kind,
        object_id=str(row.id),
        url=row.webhook_url,
        payload=payload,
        queue=queue,
        tenant_id=row.origin_tenant_id,
    )


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a delivery: the signature covers `<timestamp>.<body>` (replay-resistant)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: f"sha256={mac}", TIMESTAMP_HEADER: str(ts)}


def verify(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    ts = int(headers[TIMESTAMP_HEADER])
    expected = sign(secret, body, ts)[SIGNATURE_HEADER]
    return hmac.compare_digest(expected, headers[SIGNATURE_HEADER])


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


# --- the outbox ---------------------------------------------------------------------------


def schedule(
    session: AsyncSession,
    *,
    kind: str,
    object_id: str,
    url: str,
    payload: dict[str, Any],
    queue: str,
    tenant_id: str | None = None,
    subscription_id: uuid.UUID | None = None,
) -> WebhookDelivery:
    """Record a delivery in the caller's transaction; after commit a worker is nudged to send
    it at once, and the outbox relay sends it anyway if that nudge is lost."""
    now = utcnow()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        kind=kind,
        object_id=object_id,
        event=str(payload["event"]),
        url=url,
        body=encode(payload).decode(),
        tenant_id=tenant_id,
        queue=queue,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        subscription_id=subscription_id,
    )
    session.add(delivery)
    effects.record(session, effects.Webhook(str(delivery.id), queue))
    return delivery


def _claimable(now: datetime) -> Any:
    return (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
    )


async def claim(
    *,
    session: AsyncSession,
    lease_seconds: float,
    queues: Sequence[str],
    delivery_id: uuid.UUID | None = None,
    limit: int = 20,
) -> list[WebhookDelivery]:
    """Take due deliveries of these queues for one attempt each (a lease, so concurrent relays
    and nudged jobs never send the same attempt twice; an expired lease makes a row claimable
    again). Workers deliver the webhooks of the queues they consume, with their settings."""
    now = utcnow()
    pick = select(WebhookDelivery.id).where(
        *_claimable(now), WebhookDelivery.queue.in_(list(queues))
    )
    if delivery_id is not None:
        pick = pick.where(WebhookDelivery.id == delivery_id)
    pick = (
        pick.order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(pick.scalar_subquery()))
        .values(
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=WebhookDelivery.attempts + 1,
        )
        .returning(WebhookDelivery)
    )
    return list((await session.execute(stmt)).scalars())


async def settle(
    *,
    session: AsyncSession,
    delivery_id: uuid.UUID,
    status: str,
    error: str | None = None,
    status_code: int | None = None,
    retry_in: float | None = None,
) -> None:
    """Record an attempt's outcome: delivered, refused, or failed (again later if `retry_in`)."""
    now = utcnow()
    values: dict[str, Any] = {
        "lease_until": None,
        "last_error": error[:2000] if error else None,
        "last_status_code": status_code,
    }
    if status == "pending" and retry_in is not None:
        values["next_attempt_at"] = now + timedelta(seconds=retry_in)
    else:
        values["status"] = status
        values["finished_at"] = now
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
    )


async def deliveries_for(
    *, session: AsyncSession, kind: str, object_id: str
) -> list[WebhookDelivery]:
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.kind == kind, WebhookDelivery.object_id == object_id)
        .order_by(WebhookDelivery.created_at)
    )
    return list((await session.execute(stmt)).scalars())
