"""Tasks: submit, read, list, cancel and retry, and the worker-side steps of an attempt.

Every status change goes through `_transition`, which checks the state machine, records the
transition row and leaves a TaskChanged effect for the unit of work to publish after commit."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    String,
    cast,
    func,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.base import utcnow
from app.db.models import Task, TaskLog, TaskTransition
from app.services import effects, task_statements, webhooks
from app.services.backoff import BackoffPolicy
from app.services.errors import DomainError, InvalidInput, NotFound
from app.services.lifecycle import FINISHED, TaskStatus, check_transition
from app.services.paging import Page, PageRequest, fetch_page
from app.services.snapshots import detached_task, task_snapshot
from app.services.task_specs import TaskDefaults, TaskSpec, validate

PROGRESS_HISTORY_MAX = 100


@dataclass
class TaskFilter:
    statuses: Sequence[str] = ()
    task_types: Sequence[str] = ()
    queues: Sequence[str] = ()
    providers: Sequence[str] = ()
    origin_instance: str | None = None
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    id_prefix: str | None = None
    dead_lettered: bool | None = None


ORDER_FIELDS: dict[str, Any] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "started_at": Task.started_at,
    "completed_at": Task.completed_at,
    "status": Task.status,
    "task_type": Task.task_type,
    "priority": Task.priority,
    "progress": Task.progress,
    "queue": Task.queue,
    "provider_type": Task.provider,
    "duration_ms": Task.completed_at - Task.started_at,
}


@dataclass(frozen=True)
class Usage:
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    service_request: dict[str, Any] | None = None


# --- submission ---------------------------------------------------------------------------


def _new_task(spec: TaskSpec, defaults: TaskDefaults, now: datetime) -> Task:
    task_type, operation = validate(spec, defaults)
    retries = defaults.max_retries if spec.max_retries is None else spec.max_retries
    task_id = uuid.uuid4()
    # written by store_tasks' statement, never through a session: no ORM tracking needed
    return detached_task(
        dict(
            id=task_id,
            task_type=task_type,
            operation=operation,
            status=TaskStatus.QUEUED.value,
            queue=spec.queue,
            priority=spec.priority,
            origin_instance=spec.origin_instance,
            origin_zone=spec.origin_zone,
            origin_tenant_id=spec.origin_tenant_id,
            origin_reference=spec.origin_reference,
            input=spec.input,
            config=spec.config,
            meta=spec.metadata,
            result=None,
            result_ttl_seconds=spec.result_ttl_seconds or defaults.result_ttl_seconds or None,
            errors=[],
            attempts=0,
            max_attempts=retries + 1,
            retry_count=0,
            dead_lettered=False,
            is_resumed=False,
            resume_attempt_count=0,
            progress=0.0,
            progress_history=[],
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            created_at=now,
            updated_at=now,
            webhook_url=spec.webhook_url,
            media=spec.media,
            service_requests=[],
            workflow_id=spec.workflow_id,
            workflow_step_id=spec.workflow_step_id,
            job_id=str(task_id),
        )
    )


def _row(task: Task) -> dict[str, Any]:
    loaded = task.__dict__  # see task_snapshot
    return {
        col: loaded[key] if key in loaded else getattr(task, key)
        for key, col in task_statements.TASK_COLUMNS.items()
    }


async def submit_task(
    *, session: AsyncSession, spec: TaskSpec, defaults: TaskDefaults = TaskDefaults()
) -> Task:
    """Validate, write the task QUEUED and leave an Enqueue effect (written before enqueued)."""
    task = new_task(spec, defaults)
    await store_tasks(session=session, made=[task])
    return task


def new_task(spec: TaskSpec, defaults: TaskDefaults = TaskDefaults()) -> Task:
    """The task `spec` describes, validated (a DomainError says why not), not yet stored."""
    return _new_task(spec, defaults, utcnow())


async def store_tasks(*, session: AsyncSession, made: Sequence[Task]) -> None:
    """Write new tasks QUEUED, each with its `submitted` transition, in one statement; their
    Enqueue effects go out (one Redis pipeline) after the caller's commit."""
    if len(made) == 1:
        await session.execute(task_statements.SUBMIT, _row(made[0]))
    elif made:
        await session.execute(
            task_statements.SUBMIT_MANY,
            task_statements.submit_many_params([_row(t) for t in made]),
        )
    for task in made:
        effects.record(session, effects.Enqueue.of(task))
        _changed(session, task)


MAX_BATCH = 1000


@dataclass(frozen=True)
class ItemError:
    index: int
    field: str | None
    code: str
    message: str


class BatchRefused(DomainError):
    """Some items are invalid and the batch is not `partial`: nothing was stored."""

    code = "INVALID"

    def __init__(self, errors: list[ItemError]) -> None:
        super().__init__(f"{len(errors)} invalid item(s); nothing was submitted", field="input")
        self.errors = errors


def invalid_items(specs: Sequence[TaskSpec], defaults: TaskDefaults) -> list[ItemError]:
    """What submit_tasks would refuse, item by item, without storing anything."""
    out = []
    for i, spec in enumerate(specs):
        try:
            validate(spec, defaults)
        except DomainError as exc:
            out.append(ItemError(i, exc.field, exc.code, exc.message))
    return out


async def submit_tasks(
    *,
    session: AsyncSession,
    specs: Sequence[TaskSpec],
    defaults: TaskDefaults = TaskDefaults(),
    partial: bool = False,
) -> tuple[list[Task], list[ItemError]]:
    """Validate every item; store the valid ones (all of them, or none unless `partial`) in
    multi-row statements of the caller's transaction, each with its `submitted` transition;
    their Enqueue effects go out in one Redis pipeline after commit."""
    if not 1 <= len(specs) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} tasks", field="input")
    now = utcnow()
    made: list[Task] = []
    errors: list[ItemError] = []
    for i, spec in enumerate(specs):
        try:
            made.append(_new_task(spec, defaults, now))
        except DomainError as exc:
            errors.append(ItemError(i, exc.field, exc.code, exc.message))
    if errors and not partial:
        raise BatchRefused(errors)
    await store_tasks(session=session, made=made)
    return made, errors


# --- reading ------------------------------------------------------------------------------


def _scoped(stmt: Select[Any], tenant_id: str | None) -> Select[Any]:
    return stmt if tenant_id is None else stmt.where(Task.origin_tenant_id == tenant_id)


async def get_task(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    tenant_id: str | None = None,
    for_update: bool = False,
) -> Task:
    stmt = _scoped(select(Task).where(Task.id == task_id), tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    task: Task | None = (await session.execute(stmt)).scalar_one_or_none()
    if task is None:
        raise NotFound(f"task {task_id} not found", field="id")
    return task


async def get_tasks(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Task]:
    rows = (await session.execute(select(Task).where(Task.id.in_(task_ids)))).scalars()
    return {t.id: t for t in rows}


def _filtered(stmt: Select[Any], f: TaskFilter, tenant_id: str | None) -> Select[Any]:
    stmt = _scoped(stmt, tenant_id)
    if f.statuses:
        stmt = stmt.where(Task.status.in_(list(f.statuses)))
    if f.task_types:
        stmt = stmt.where(Task.task_type.in_(list(f.task_types)))
    if f.queues:
        stmt = stmt.where(Task.queue.in_(list(f.queues)))
    if f.providers:
        stmt = stmt.where(Task.provider.in_(list(f.providers)))
    if f.origin_instance is not None:
        stmt = stmt.where(Task.origin_instance == f.origin_instance)
    if f.origin_zone is not None:
        stmt = stmt.where(Task.origin_zone == f.origin_zone)
    if f.origin_tenant_id is not None:
        stmt = stmt.where(Task.origin_tenant_id == f.origin_tenant_id)
    if f.created_after is not None:
        stmt = stmt.where(Task.created_at > f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(Task.created_at < f.created_before)
    if f.id_prefix:
        prefix = f.id_prefix.lower().replace("%", "").replace("_", "")
        stmt = stmt.where(cast(Task.id, String).like(prefix + "%"))
    if f.dead_lettered is not None:
        stmt = stmt.where(Task.dead_lettered.is_(f.dead_lettered))
    return stmt


async def list_tasks(
    *,
    session: AsyncSession | AsyncConnection,
    filter: TaskFilter,
    page: PageRequest,
    tenant_id: str | None = None,
    columns: Sequence[str] | None = None,
) -> Page[Any]:
    """Whole rows, or with `columns` lean rows of just those attributes (plain tuples with
    attribute access, no ORM identity map: a read path that hydrates nothing it shows not;
    a plain connection can run it then)."""
    entity: Any = select(Task) if columns is None else select(*(getattr(Task, c) for c in columns))
    return await fetch_page(
        session,
        _filtered(entity, filter, tenant_id),
        order_fields=ORDER_FIELDS,
        id_column=Task.id,
        request=page,
    )


async def count_tasks(
    *, session: AsyncSession | AsyncConnection, filter: TaskFilter, tenant_id: str | None = None
) -> int:
    stmt = _filtered(select(func.count()).select_from(Task), filter, tenant_id)
    return int((await session.execute(stmt)).scalar_one())


async def transitions_for(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaskTransition]]:
    stmt = (
        select(TaskTransition)
        .where(TaskTransition.task_id.in_(task_ids))
        .order_by(TaskTransition.task_id, TaskTransition.id)
    )
    out: dict[uuid.UUID, list[TaskTransition]] = defaultdict(list)
    for row in (await session.execute(stmt)).scalars():
        out[row.task_id].append(row)
    return out


async def logs_for(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaskLog]]:
    stmt = select(TaskLog).where(TaskLog.task_id.in_(task_ids)).order_by(TaskLog.id)
    out: dict[uuid.UUID, list[TaskLog]] = defaultdict(list)
    for row in (await session.execute(stmt)).scalars():
        out[row.task_id].append(row)
    return out


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
    _changed(session, task)
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
    task.progress = 0.0
    await session.flush()
    effects.record(session, effects.Enqueue.of(task))
    _changed(session, task)
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
        _changed(session, task)
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
        "requests": [usage.service_request] if usage.service_request else [],
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
        _changed(session, task)
        _notify(session, task)
    return task


async def fail_attempt(
    *,
    session: AsyncSession,
    task: Task,
    error: str,
    retryable: bool,
    policy: BackoffPolicy,
    usage: Usage | None = None,
) -> float | None:
    """Record the error; return the retry delay in seconds, or None when the task is FAILED."""
    if usage is not None:
        _apply_usage(task, usage)
    task.errors = [*task.errors, f"attempt {task.attempts}: {error}"][-50:]
    if task.cancel_requested_at is not None:
        await acknowledge_cancel(session=session, task=task, reason=f"attempt failed: {error}")
        return None
    if retryable and task.attempts < task.max_attempts:
        task.retry_count += 1
        delay = policy.delay(task.retry_count)
        _transition(session, task, TaskStatus.QUEUED, f"retry {task.retry_count} in {delay:.2f}s")
        task.next_attempt_at = task.updated_at + timedelta(seconds=delay)
        _log(session, task, f"attempt {task.attempts} failed: {error}; retrying", "warning")
        await session.flush()
        _changed(session, task)
        return delay
    why = "retries exhausted" if retryable else "fatal error"
    _transition(session, task, TaskStatus.FAILED, f"{why}: {error}")
    task.dead_lettered = True
    task.dead_lettered_at = task.updated_at
    _log(session, task, f"attempt {task.attempts} failed: {error}; {why}", "error")
    await session.flush()
    _changed(session, task)
    _notify(session, task)
    return None


async def acknowledge_cancel(
    *, session: AsyncSession, task: Task, reason: str = "stopped by worker"
) -> Task:
    _transition(session, task, TaskStatus.CANCELLED, f"cancelled as requested ({reason})")
    await session.flush()
    _changed(session, task)
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
    _changed(session, task)
    return task


async def append_log(
    *, session: AsyncSession, task_id: uuid.UUID, message: str, level: str = "info"
) -> None:
    """A line in a task's log (jobs report what they do here)."""
    session.add(TaskLog(task_id=task_id, level=level, message=message[:4000], at=utcnow()))


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
    _changed(session, task)
    return task


async def postpone_attempt(*, session: AsyncSession, task: Task, reason: str, delay: float) -> Task:
    """RUNNING -> QUEUED without spending an attempt: the call was never made (its model
    service's circuit breaker is open), so the retry budget stays whole."""
    if task.cancel_requested_at is not None:
        return await acknowledge_cancel(session=session, task=task, reason=reason)
    _transition(session, task, TaskStatus.QUEUED, reason)
    task.attempts = max(task.attempts - 1, 0)
    task.next_attempt_at = task.updated_at + timedelta(seconds=delay)
    _log(session, task, reason, "warning")
    await session.flush()
    _changed(session, task)
    return task


async def queued_tasks_older_than(
    *,
    session: AsyncSession,
    age: timedelta,
    limit: int = 1000,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Task]:
    """QUEUED tasks unchanged for `age`, oldest first, a page at a time (keyset `after`)."""
    stmt = select(Task).where(Task.status == TaskStatus.QUEUED, Task.updated_at < utcnow() - age)
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
    if usage.service_request is not None:
        task.service_requests = [*task.service_requests, usage.service_request][-50:]


def _progress(task: Task, value: float, message: str | None) -> None:
    entry = {"at": utcnow().isoformat(), "progress": value, "message": message}
    task.progress_history = [*task.progress_history, entry][-PROGRESS_HISTORY_MAX:]


def _log(session: AsyncSession, task: Task, message: str, level: str) -> None:
    session.add(TaskLog(task_id=task.id, level=level, message=message[:4000], at=utcnow()))


def _notify(session: AsyncSession, task: Task) -> None:
    if task.webhook_url:
        webhooks.schedule(
            session,
            kind="task",
            object_id=str(task.id),
            url=task.webhook_url,
            payload=webhooks.task_payload(task),
            queue=task.queue,
            tenant_id=task.origin_tenant_id,
        )


def _changed(session: AsyncSession, task: Task) -> None:
    effects.record(session, effects.TaskChanged(task_snapshot(task)))
