"""Submitting tasks: one or a batch, validated item by item, written QUEUED with their
`submitted` transitions in one statement, enqueued after commit (written before enqueued)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task
from app.kernel import effects
from app.kernel.errors import DomainError, InvalidInput
from app.platform.storable import Unstorable, check_objects
from app.services.tasks import counters, idempotency
from app.services.tasks import statements as task_statements
from app.services.tasks.catalog import CATALOG, OpenSession
from app.services.tasks.commands import changed, get_task
from app.services.tasks.lifecycle import TaskStatus
from app.services.tasks.snapshots import detached_task
from app.services.tasks.specs import TaskDefaults, TaskSpec, Valid, validate
from app.services.tasks.types import BUILTIN_TYPES


def _new_task(spec: TaskSpec, defaults: TaskDefaults, now: datetime) -> Task:
    task = _made(spec, defaults, now, validate(spec, defaults, now))
    # store_tasks' statement bypasses the flush, where every other write's bounds are
    # checked (app/platform/storable.py): the same check here, naming the field as GraphQL spells it
    try:
        check_objects([task])
    except Unstorable as exc:
        field = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), exc.field or "")
        raise InvalidInput(exc.message.replace(exc.field or "", field, 1), field=field) from None
    return task


def _made(spec: TaskSpec, defaults: TaskDefaults, now: datetime, valid: Valid) -> Task:
    task_id = uuid.uuid4()
    # written by store_tasks' statement, never through a session: no ORM tracking needed
    return detached_task(
        dict(
            id=task_id,
            task_type=valid.task_type,
            operation=valid.operation,
            status=TaskStatus.QUEUED.value,
            queue=valid.queue,
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
            max_attempts=valid.max_retries + 1,
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
            parent_id=spec.parent_id,
            concurrency_key=valid.concurrency_key,
            concurrency_limit=valid.concurrency_limit,
            rate_key=valid.rate_key,
            rate_limit=valid.rate_limit,
            run_at=valid.run_at,
            # waiting for its time (a worker's ticker enqueues it then); a past time runs now
            due_at=valid.run_at if valid.run_at is not None and valid.run_at > now else None,
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
    """Validate, write the task QUEUED and leave an Enqueue effect (written before enqueued);
    with an idempotency key, the task that key made when it was given the same request."""
    return (await submit_task_once(session=session, spec=spec, defaults=defaults)).task


@dataclass(frozen=True)
class Submitted:
    task: Task
    # the task an earlier submission with the same idempotency key made
    replayed: bool = False


async def submit_task_once(
    *, session: AsyncSession, spec: TaskSpec, defaults: TaskDefaults = TaskDefaults()
) -> Submitted:
    """`submit_task`, saying whether its idempotency key answered an earlier task."""
    await know_types([spec.task_type], lambda: nullcontext(session))
    task = new_task(spec, defaults)
    earlier = await _claimed(session, spec, task, defaults)
    if earlier is not None:
        return Submitted(earlier, replayed=True)
    await check_queued_cap(session, [task], defaults.max_queued_per_tenant)
    await store_tasks(session=session, made=[task])
    return Submitted(task)


class TenantQueueFull(DomainError):
    """A tenant already has OPSGRAPH_MAX_QUEUED_PER_TENANT tasks QUEUED (REST 429)."""

    code = "TOO_MANY_QUEUED"


def capped(task: Task) -> bool:
    """Whether the per-tenant cap judges this new task: a tenant's own submission, not the
    step or child of work admitted before (fields only opsgraph's services set; a schedule's
    ticks store their runs without this check, a triggered run counts)."""
    return task.origin_tenant_id is not None and task.workflow_id is None and task.parent_id is None


async def check_queued_cap(session: AsyncSession, made: Sequence[Task], cap: int | None) -> None:
    """Refuse `made` when a tenant would have more than `cap` QUEUED tasks. Each tenant's
    check and write are one at a time (a lock until the caller's commit, which is also when
    the counters move), so concurrent submissions cannot pass the cap together."""
    if cap is None:
        return
    adding = Counter(t.origin_tenant_id for t in made if capped(t))
    for tenant in sorted(t for t in adding if t is not None):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"opsgraph-queued-cap:{tenant}"},
        )
        queued = await counters.queued_of(session=session, tenant=tenant)
        if queued + adding[tenant] > cap:
            raise TenantQueueFull(
                f"tenant {tenant!r} has {queued} tasks queued; at most {cap} "
                f"(OPSGRAPH_MAX_QUEUED_PER_TENANT): {adding[tenant]} more refused",
                field="tenant",
            )


async def _claimed(
    session: AsyncSession,
    spec: TaskSpec,
    task: Task,
    defaults: TaskDefaults,
    pending: dict[uuid.UUID, Task] | None = None,
) -> Task | None:
    """With a key: None when it is claimed for `task` (store it), else the task it made (one
    of `pending`, when an earlier item of the same batch claimed it)."""
    if spec.idempotency_key is None:
        return None
    claim = idempotency.Claim(
        spec.origin_tenant_id, spec.idempotency_key, "task", idempotency.fingerprint(spec)
    )
    earlier = await idempotency.claim(
        session, claim, task.id, now=task.created_at, ttl=defaults.idempotency_ttl_seconds
    )
    if earlier is None:
        return None
    if pending is not None and earlier in pending:
        return pending[earlier]
    return await get_task(session=session, task_id=earlier, tenant_id=spec.origin_tenant_id)


async def know_types(names: Iterable[str | None], open_session: OpenSession) -> None:
    """Before validating: read the registered task types again if a submission names one
    this process does not know yet (a worker registered it a moment ago) or its copy is old."""
    await CATALOG.ensure((n for n in names if n and n not in BUILTIN_TYPES), open_session)


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
        if task.due_at is None:  # else the ticker enqueues it when it is due
            effects.record(session, effects.Enqueue.of(task))
        changed(session, task)


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


@dataclass(frozen=True)
class BatchSubmitted:
    # the valid items' tasks, in their order: new ones, and those their idempotency keys
    # made before (`replayed`: their positions in `tasks`)
    tasks: list[Task]
    errors: list[ItemError]
    replayed: frozenset[int] = frozenset()

    @property
    def stored(self) -> int:
        """How many tasks this batch wrote."""
        return len(self.tasks) - len(self.replayed)

    @property
    def replayed_ids(self) -> list[uuid.UUID]:
        return [self.tasks[i].id for i in sorted(self.replayed)]


async def submit_tasks(
    *,
    session: AsyncSession,
    specs: Sequence[TaskSpec],
    defaults: TaskDefaults = TaskDefaults(),
    partial: bool = False,
) -> BatchSubmitted:
    """Validate every item; store the valid ones (all of them, or none unless `partial`) in
    multi-row statements of the caller's transaction, each with its `submitted` transition;
    their Enqueue effects go out in one Redis pipeline after commit. An item whose
    idempotency key made a task before answers that task."""
    if not 1 <= len(specs) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} tasks", field="input")
    await know_types((s.task_type for s in specs), lambda: nullcontext(session))
    now = utcnow()
    made: dict[uuid.UUID, Task] = {}
    answered: list[Task] = []
    replayed: set[int] = set()
    errors: list[ItemError] = []
    for i, spec in enumerate(specs):
        try:
            task = _new_task(spec, defaults, now)
            earlier = await _claimed(session, spec, task, defaults, made)
        except DomainError as exc:
            errors.append(ItemError(i, exc.field, exc.code, exc.message))
            continue
        if earlier is None:
            made[task.id] = task
        else:
            replayed.add(len(answered))
        answered.append(earlier or task)
    if errors and not partial:
        raise BatchRefused(errors)
    await check_queued_cap(session, list(made.values()), defaults.max_queued_per_tenant)
    await store_tasks(session=session, made=list(made.values()))
    return BatchSubmitted(answered, errors, frozenset(replayed))


# --- reading ------------------------------------------------------------------------------
