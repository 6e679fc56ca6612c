"""Webhook payloads and their HMAC-SHA256 signatures (delivery happens in the workers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from app.db.models import Task, Workflow

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
