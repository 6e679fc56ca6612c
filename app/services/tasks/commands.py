"""Tasks: read one, cancel and retry, and the worker-side steps of an attempt (submitting:
task_submissions; lists and the rows around a task: task_queries).

Every status change goes through `_transition`, which checks the state machine, records the
transition row and leaves a TaskChanged effect for the unit of work to publish after commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task, TaskLog, TaskTransition
from app.kernel import effects
from app.kernel.errors import InvalidInput, NotFound
from app.services.rows import one
from app.services.tasks import statements as task_statements
from app.services.tasks.backoff import BackoffPolicy
from app.services.tasks.lifecycle import FINISHED, TaskStatus, check_transition
from app.services.tasks.queries import scoped
from app.services.tasks.snapshots import task_snapshot
from app.services.webhooks import deliveries as webhooks

PROGRESS_HISTORY_MAX = 100


@dataclass(frozen=True)
class Usage:
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    service_request: dict[str, Any] | None = None
    # further requests of the attempt (a task handler's ctx.request), after service_request
    more_requests: tuple[dict[str, Any], ...] = ()

    def requests(self) -> list[dict[str, Any]]:
        first = [self.service_request] if self.service_request is not None else []
        return [*first, *self.more_requests]


async def get_task(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    tenant_id: str | None = None,
    for_update: bool = False,
) -> Task:
    stmt = scoped(select(Task).where(Task.id == task_id), tenant_id)
    missing = NotFound(f"task {task_id} not found", field="id")
    task: Task = await one(session, stmt, missing, for_update=for_update)
    return task


# --- operator actions ---------------------------------------------------------------------


async def cancel_task(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    tenant_id: str | None = None,
    reason: str = "cancelled by request",
) -> Task:
    """QUEUED: cancelled at once. RUNNING: asked to stop; CANCELLED when the worker acknowledges."""
    task = await get_task(session=session, task_id=task_id, tenant_id=tenant_id, for_update=True)
    if task.status == TaskStatus.QUEUED:
        _transition(session, task, TaskStatus.CANCELLED, reason)
        task.due_at = None  # a task waiting for its time never runs
        # Its job may already be waiting for an LLM slot: stop that wait too.
        effects.record(session, effects.Abort(str(task.id)))
    elif task.status == TaskStatus.RUNNING:
        if task.cancel_requested_at is None:
            task.cancel_requested_at = utcnow()
            task.updated_at = task.cancel_requested_at
            _log(session, task, "cancel requested: " + reason, "warning")
        effects.record(session, effects.Abort(str(task.id)))
    else:
        check_transition(task.status, TaskStatus.CANCELLED)
    await session.flush()
    changed(session, task)
    return task


async def retry_task(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    tenant_id: str | None = None,
    reason: str = "retried by request",
) -> Task:
    """Put a FAILED or CANCELLED task back to QUEUED with a fresh attempt budget (its
    transitions, logs and errors stay)."""
    task = await get_task(session=session, task_id=task_id, tenant_id=tenant_id, for_update=True)
    check_transition(task.status, TaskStatus.QUEUED)
    _transition(session, task, TaskStatus.QUEUED, reason)
    task.attempts = 0
    task.retry_count = 0
    task.dead_lettered = False
    task.dead_lettered_at = None
    task.cancel_requested_at = None
    task.completed_at = None
    task.next_attempt_at = None
    task.due_at = None  # retried: it runs now
    task.progress = 0.0
    await session.flush()
    effects.record(session, effects.Enqueue.of(task))
    changed(session, task)
    return task


# --- worker side --------------------------------------------------------------------------


async def start_attempt(
    *, session: AsyncSession, task_id: uuid.UUID, worker_name: str
) -> Task | None:
    """Mark RUNNING before any work; None when the task is not QUEUED (cancelled, done, gone)."""
    check_transition(TaskStatus.QUEUED, TaskStatus.RUNNING)
    params = {"tid": task_id, "now": utcnow(), "worker": worker_name}
    task: Task | None = (await session.execute(task_statements.START, params)).scalar_one_or_none()
    if task is not None:
        changed(session, task)
    return task


def completion_params(
    task_id: uuid.UUID, worker_name: str, result: Any, usage: Usage
) -> dict[str, Any]:
    """The parameters of task_statements.COMPLETE (either path's)."""
    now = utcnow()
    return {
        "tid": task_id,
        "worker": worker_name,
        "now": now,
        "result": result,
        "in_tokens": usage.input_tokens,
        "out_tokens": usage.output_tokens,
        "cost": float(usage.cost_usd),
        "provider": usage.provider,
        "model": usage.model,
        "latency": usage.latency_ms,
        "requests": usage.requests(),
        "history": [{"at": now.isoformat(), "progress": 100.0, "message": "completed"}],
    }


async def complete_attempt(
    *, session: AsyncSession, task_id: uuid.UUID, worker_name: str, result: Any, usage: Usage
) -> Task | None:
    """RUNNING -> COMPLETED, only if this worker still owns the attempt (else None)."""
    check_transition(TaskStatus.RUNNING, TaskStatus.COMPLETED)
    params = completion_params(task_id, worker_name, result, usage)
    task: Task | None = (
        await session.execute(task_statements.COMPLETE, params)
    ).scalar_one_or_none()
    if task is not None:
        changed(session, task)
        webhooks.notify_task(session, task)
    return task


async def fail_attempt(
    *,
    session: AsyncSession,
    task: Task,
    error: str,
    retryable: bool,
    policy: BackoffPolicy,
    usage: Usage | None = None,
    retry_after: float | None = None,
) -> float | None:
    """Record the error; return the retry delay in seconds, or None when the task is FAILED.
    `retry_after` replaces the policy's delay (a handler said when to try again)."""
    if usage is not None:
        _apply_usage(task, usage)
    task.errors = [*task.errors, f"attempt {task.attempts}: {error}"][-50:]
    if task.cancel_requested_at is not None:
        await acknowledge_cancel(session=session, task=task, reason=f"attempt failed: {error}")
        return None
    if retryable and task.attempts < task.max_attempts:
        task.retry_count += 1
        delay = policy.delay(task.retry_count) if retry_after is None else retry_after
        _transition(session, task, TaskStatus.QUEUED, f"retry {task.retry_count} in {delay:.2f}s")
        task.next_attempt_at = task.updated_at + timedelta(seconds=delay)
        _log(session, task, f"attempt {task.attempts} failed: {error}; retrying", "warning")
        await session.flush()
        changed(session, task)
        return delay
    why = "retries exhausted" if retryable else "fatal error"
    _transition(session, task, TaskStatus.FAILED, f"{why}: {error}")
    task.dead_lettered = True
    task.dead_lettered_at = task.updated_at
    _log(session, task, f"attempt {task.attempts} failed: {error}; {why}", "error")
    await session.flush()
    changed(session, task)
    webhooks.notify_task(session, task)
    return None


async def acknowledge_cancel(
    *, session: AsyncSession, task: Task, reason: str = "stopped by worker"
) -> Task:
    _transition(session, task, TaskStatus.CANCELLED, f"cancelled as requested ({reason})")
    await session.flush()
    changed(session, task)
    return task


async def set_progress(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    worker_name: str,
    progress: float,
    message: str | None = None,
) -> Task | None:
    """Record progress reported by the worker running the task (ignored if it lost the task)."""
    task = await get_task(session=session, task_id=task_id, for_update=True)
    if task.status != TaskStatus.RUNNING or task.worker_name != worker_name:
        return None
    task.progress = max(0.0, min(100.0, progress))
    task.updated_at = utcnow()
    _progress(task, task.progress, message)
    await session.flush()
    changed(session, task)
    return task


async def add_usage(
    *, session: AsyncSession, task_id: uuid.UUID, worker_name: str, usage: Usage
) -> Task | None:
    """Count what part of a running attempt spent (a job's calls one by one), so tokens and
    cost are recorded even when the attempt later times out or is aborted."""
    task = await get_task(session=session, task_id=task_id, for_update=True)
    if task.status != TaskStatus.RUNNING or task.worker_name != worker_name:
        return None
    _apply_usage(task, usage)
    task.updated_at = utcnow()
    await session.flush()
    return task


MEDIA_KINDS = ("inputs", "outputs")
MEDIA_PER_KIND = 100


async def add_media(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    worker_name: str,
    kind: str,
    item: dict[str, str],
) -> Task | None:
    """Declare one of a running task's media (its worker's handler does; ignored if the
    worker lost the task). An item of the same name replaces the earlier one."""
    if kind not in MEDIA_KINDS:
        raise InvalidInput("kind must be 'inputs' or 'outputs'", field="kind")
    task = await get_task(session=session, task_id=task_id, for_update=True)
    if task.status != TaskStatus.RUNNING or task.worker_name != worker_name:
        return None
    media = dict(task.media or {})
    items = [m for m in media.get(kind) or [] if m.get("name") != item["name"]]
    if len(items) >= MEDIA_PER_KIND:
        raise InvalidInput(f"a task declares at most {MEDIA_PER_KIND} {kind}", field="kind")
    media[kind] = [*items, item]
    task.media = media
    task.updated_at = utcnow()
    await session.flush()
    changed(session, task)
    return task


async def append_log(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    message: str,
    level: str = "info",
    fields: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """A line in a task's log (jobs and task handlers report what they do here)."""
    session.add(
        TaskLog(
            task_id=task_id, level=level, message=message[:4000], fields=fields, at=at or utcnow()
        )
    )


async def resume_task(*, session: AsyncSession, task: Task, reason: str) -> Task:
    """A RUNNING task whose worker died goes back to QUEUED, counted as a resume attempt;
    one with a pending cancel request is CANCELLED instead (a cancel always wins)."""
    if task.cancel_requested_at is not None:
        return await acknowledge_cancel(session=session, task=task, reason=reason)
    _transition(session, task, TaskStatus.QUEUED, reason)
    task.is_resumed = True
    task.resume_attempt_count += 1
    task.last_resume_attempt = task.updated_at
    # The interrupted attempt does not count against the retry budget.
    task.attempts = max(task.attempts - 1, 0)
    _log(session, task, reason, "warning")
    await session.flush()
    changed(session, task)
    return task


async def postpone_attempt(*, session: AsyncSession, task: Task, reason: str, delay: float) -> Task:
    """RUNNING -> QUEUED without spending an attempt: no call was served (its model service's
    circuit breaker is open, or the provider refused it for its rate limit), so the retry
    budget stays whole."""
    if task.cancel_requested_at is not None:
        return await acknowledge_cancel(session=session, task=task, reason=reason)
    _transition(session, task, TaskStatus.QUEUED, reason)
    task.attempts = max(task.attempts - 1, 0)
    task.next_attempt_at = task.updated_at + timedelta(seconds=delay)
    _log(session, task, reason, "warning")
    await session.flush()
    changed(session, task)
    return task


async def queued_tasks_older_than(
    *,
    session: AsyncSession,
    age: timedelta,
    limit: int = 1000,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Task]:
    """QUEUED tasks unchanged for `age` that should have a job (not waiting for their time),
    oldest first, a page at a time (keyset `after`)."""
    stmt = select(Task).where(
        Task.status == TaskStatus.QUEUED,
        Task.updated_at < utcnow() - age,
        Task.due_at.is_(None),  # one waiting for its time has no job yet (tasks/due.py)
    )
    if after is not None:
        stmt = stmt.where(tuple_(Task.updated_at, Task.id) > tuple_(*after))
    stmt = stmt.order_by(Task.updated_at, Task.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def running_tasks(*, session: AsyncSession, limit: int = 5000) -> list[Task]:
    stmt = select(Task).where(Task.status == TaskStatus.RUNNING).limit(limit)
    return list((await session.execute(stmt)).scalars())


# --- helpers ------------------------------------------------------------------------------


def _transition(session: AsyncSession, task: Task, target: TaskStatus, reason: str) -> None:
    check_transition(task.status, target)
    now = utcnow()
    session.add(
        TaskTransition(
            task_id=task.id,
            from_status=task.status,
            to_status=target.value,
            at=now,
            reason=reason[:2000],
        )
    )
    task.status = target.value
    task.updated_at = now
    if target in FINISHED:
        task.completed_at = now
    if target == TaskStatus.QUEUED:
        task.worker_name = None


def _apply_usage(task: Task, usage: Usage) -> None:
    task.provider = usage.provider or task.provider
    task.model = usage.model or task.model
    task.input_tokens += usage.input_tokens
    task.output_tokens += usage.output_tokens
    task.cost_usd = round(task.cost_usd + usage.cost_usd, 8)
    if usage.latency_ms is not None:
        task.latency_ms = usage.latency_ms
    if usage.requests():
        task.service_requests = [*task.service_requests, *usage.requests()][-50:]


def _progress(task: Task, value: float, message: str | None) -> None:
    entry = {"at": utcnow().isoformat(), "progress": value, "message": message}
    task.progress_history = [*task.progress_history, entry][-PROGRESS_HISTORY_MAX:]


def _log(session: AsyncSession, task: Task, message: str, level: str) -> None:
    session.add(TaskLog(task_id=task.id, level=level, message=message[:4000], at=utcnow()))


def changed(session: AsyncSession, task: Task) -> None:
    """Leave the TaskChanged effect (the task as it now is) for after commit."""
    effects.record(session, effects.TaskChanged(task_snapshot(task)))
