"""Webhook delivery as its own arq job, so a slow or failing receiver never holds a task slot;
retried with the task backoff policy up to `webhook_max_attempts`. Deliveries are scheduled
after commit by the unit of work (a Webhook effect) when a task or workflow finishes."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
from arq import Retry
from sqlalchemy.exc import DBAPIError

from app.services import tasks, webhooks, workflows
from app.services.errors import NotFound
from app.uow import read_only
from workers.context import state_of

log = logging.getLogger(__name__)


async def deliver_webhook(ctx: dict[str, Any], kind: str, object_id: str, status: str) -> str:
    state = state_of(ctx)
    attempt = int(ctx.get("job_try", 1))
    async with read_only(state.sessionmaker) as session:
        try:
            if kind == "workflow":
                wf = await workflows.get_workflow(session=session, workflow_id=uuid.UUID(object_id))
                url, payload = wf.webhook_url, webhooks.workflow_payload(wf)
            else:
                task = await tasks.get_task(session=session, task_id=uuid.UUID(object_id))
                url, payload = task.webhook_url, webhooks.task_payload(task)
        except NotFound:
            return "gone"
        except DBAPIError as exc:  # PostgreSQL unreachable or the connection dropped: later
            raise Retry(defer=state.policy.delay(attempt)) from exc
    if not url:
        return "no webhook"
    body = webhooks.encode(payload)
    headers = {
        "Content-Type": "application/json",
        webhooks.EVENT_HEADER: f"{kind}.{status.lower()}",
        **webhooks.sign(state.settings.webhook_secret, body),
    }
    try:
        response = await state.http.post(
            url, content=body, headers=headers, timeout=state.settings.webhook_timeout_seconds
        )
        if response.status_code < 300:
            return f"delivered ({response.status_code})"
        problem = f"receiver answered {response.status_code}"
    except httpx.HTTPError as exc:
        problem = f"receiver unreachable: {exc!r}"
    if attempt >= state.settings.webhook_max_attempts:
        log.warning(
            "webhook for %s %s abandoned after %d attempts: %s", kind, object_id, attempt, problem
        )
        return f"abandoned: {problem}"
    raise Retry(defer=state.policy.delay(attempt))
