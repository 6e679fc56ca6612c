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

SIGNATURE_HEADER = "X-Opsgraph-Signature"
TIMESTAMP_HEADER = "X-Opsgraph-Timestamp"
EVENT_HEADER = "X-Opsgraph-Event"


def task_payload(task: Task) -> dict[str, Any]:
    return {
        "event": f"task.{task.status.lower()}",
        "task": {
            "id": str(task.id),
            "task_type": task.task_type,
            "operation": task.operation,
            "status": task.status,
            "queue": task.queue,
            "result": task.result,
            "errors": task.errors,
            "attempts": task.attempts,
            "dead_lettered": task.dead_lettered,
            "input_tokens": task.input_tokens,
            "output_tokens": task.output_tokens,
            "cost_usd": task.cost_usd,
            "completed_at": task.completed_at.isoformat() if task.completed_at else None,
            "origin_reference": task.origin_reference,
        },
    }


def workflow_payload(wf: Workflow) -> dict[str, Any]:
    return {
        "event": f"workflow.{wf.status.lower()}",
        "workflow": {
            "id": str(wf.id),
            "name": wf.name,
            "status": wf.status,
            "result": wf.result,
            "error_message": wf.error_message,
            "errors": wf.errors,
            "completed_steps": wf.completed_steps,
            "total_steps": wf.total_steps,
            "completed_at": wf.completed_at.isoformat() if wf.completed_at else None,
            "origin_reference": wf.origin_reference,
        },
    }


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
