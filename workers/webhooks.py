"""Webhook delivery as its own arq job, so a slow or failing receiver never holds a task slot;
retried with the task backoff policy up to `webhook_max_attempts`."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from arq import Retry

from app import dispatch
from app.db.models import Task
from app.services import tasks, webhooks
from app.uow import read_only
from workers.context import WorkerState, state_of

log = logging.getLogger(__name__)

DELIVER = "deliver_webhook"


async def schedule(state: WorkerState, task: Task) -> None:
    if not task.webhook_url:
        return
    await state.redis.enqueue_job(
        DELIVER,
        str(task.id),
        task.status,
        _job_id=f"webhook:{task.id}:{task.status}:{task.attempts}",
        _queue_name=dispatch.queue_key(task.queue),
    )


async def deliver_webhook(ctx: dict[str, Any], task_id: str, status: str) -> str:
    state = state_of(ctx)
    attempt = int(ctx.get("job_try", 1))
    async with read_only(state.sessionmaker) as session:
        task = await tasks.get_task(session=session, task_id=uuid.UUID(task_id))
    if not task.webhook_url:
        return "no webhook"
    body = webhooks.encode(webhooks.task_payload(task))
    headers = {
        "Content-Type": "application/json",
        webhooks.EVENT_HEADER: f"task.{status.lower()}",
        **webhooks.sign(state.settings.webhook_secret, body),
    }
    try:
        response = await state.http.post(
            task.webhook_url,
            content=body,
            headers=headers,
            timeout=state.settings.webhook_timeout_seconds,
        )
        if response.status_code < 300:
            return f"delivered ({response.status_code})"
        problem = f"receiver answered {response.status_code}"
    except httpx.HTTPError as exc:
        problem = f"receiver unreachable: {exc!r}"
    if attempt >= state.settings.webhook_max_attempts:
        log.warning(
            "webhook for task %s abandoned after %d attempts: %s", task_id, attempt, problem
        )
        return f"abandoned: {problem}"
    raise Retry(defer=state.policy.delay(attempt))
