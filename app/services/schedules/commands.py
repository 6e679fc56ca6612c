"""Creating, changing and starting schedules: the checks a schedule passes, and what one of
its fires starts (a task or a workflow, in the schedule's tenant)."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Schedule, ScheduleFire, Task, Workflow
from app.kernel import effects
from app.kernel.errors import DomainError, InvalidInput, NotFound
from app.services.rows import of_tenant, one
from app.services.schedules.config import ScheduleRules
from app.services.schedules.cron import CatchUp, Overlap, check, next_after, zone
from app.services.tasks import commands as tasks
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions
from app.services.tasks.lifecycle import TaskStatus
from app.services.workflows import definitions as workflow_definitions
from app.services.workflows import engine as workflows

log = logging.getLogger(__name__)
UNIQUE_TICK = "uq_schedule_fires_tick"
SCHEDULE_KIND = "schedule"  # the event a change publishes (scheduleChanged)


class Outcome:
    STARTED = "STARTED"
    SKIPPED = "SKIPPED"
    MISSED = "MISSED"
    FAILED = "FAILED"


@dataclass
class ScheduleSpec:
    name: str
    cron: str
    timezone: str = "UTC"
    task_type: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    workflow: workflow_definitions.WorkflowSpec | None = None
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.NONE
    paused: bool = False


async def _validate(
    session: AsyncSession, spec: ScheduleSpec, rules: ScheduleRules, now: datetime
) -> None:
    if not spec.name.strip() or len(spec.name) > 255:
        raise InvalidInput("name must be 1-255 characters", field="name")
    tz = zone(spec.timezone)
    check(spec.cron, tz, now, rules.min_seconds)
    if (spec.task_type is None) == (spec.workflow is None):
        raise InvalidInput("give a taskType (with its input) or a workflow", field="taskType")
    defaults = rules.task_defaults
    if spec.task_type is not None:
        await submissions.know_types([spec.task_type], lambda: nullcontext(session))
        task_specs.validate(_task_spec(spec, None, None), defaults)
    else:
        assert spec.workflow is not None
        if spec.workflow.idempotency_key is not None:
            # every fire makes a workflow of its own: a key would answer the first one's
            raise InvalidInput(
                "a schedule's workflow takes no idempotencyKey: each fire makes its own",
                field="workflow.idempotencyKey",
            )
        await submissions.know_types(
            (s.task_type for s in spec.workflow.steps), lambda: nullcontext(session)
        )
        try:
            workflow_definitions.validate(spec.workflow, defaults=defaults)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=f"workflow.{exc.field}") from None


def _task_spec(
    spec: ScheduleSpec, tenant_id: str | None, schedule_id: uuid.UUID | None
) -> task_specs.TaskSpec:
    return task_specs.TaskSpec(
        task_type=spec.task_type,
        input=dict(spec.input),
        origin_instance="schedule",
        origin_tenant_id=tenant_id,
        origin_reference=str(schedule_id) if schedule_id else None,
        metadata={"schedule_id": str(schedule_id)} if schedule_id else {},
    )


def _stored_workflow(spec: ScheduleSpec) -> dict[str, Any] | None:
    """The workflow a fire creates, as JSON (times as ISO 8601, enums as their words)."""
    if spec.workflow is None:
        return None
    stored: dict[str, Any] = json.loads(
        json.dumps(dataclasses.asdict(spec.workflow), default=_json)
    )
    return stored


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def workflow_of(stored: dict[str, Any]) -> workflow_definitions.WorkflowSpec:
    """The stored workflow back as the spec createWorkflow takes."""
    steps = []
    for s in stored.get("steps", []):
        decision = s.get("default_decision")
        steps.append(
            workflow_definitions.StepSpec(
                **{
                    **s,
                    "kind": workflow_definitions.StepKind(s.get("kind") or "TASK"),
                    "until": _time(s.get("until")),
                    "default_decision": workflow_definitions.Decision(decision)
                    if decision
                    else None,
                }
            )
        )
    return workflow_definitions.WorkflowSpec(
        **{**stored, "steps": steps, "run_at": _time(stored.get("run_at"))}
    )


def _apply(schedule: Schedule, spec: ScheduleSpec, now: datetime) -> None:
    schedule.name = spec.name.strip()
    schedule.cron = spec.cron
    schedule.timezone = spec.timezone
    schedule.task_type = spec.task_type
    schedule.input = dict(spec.input) if spec.task_type else {}
    schedule.workflow = _stored_workflow(spec)
    schedule.overlap = spec.overlap.value
    schedule.catch_up = spec.catch_up.value
    schedule.paused = spec.paused
    schedule.next_fire_at = next_after(spec.cron, zone(spec.timezone), now)[0]
    schedule.updated_at = now


def changed(session: AsyncSession, schedule: Schedule) -> None:
    effects.record(
        session,
        effects.Published(
            SCHEDULE_KIND,
            str(schedule.id),
            {"id": str(schedule.id), "tenant_id": schedule.tenant_id},
        ),
    )


async def create_schedule(
    *,
    session: AsyncSession,
    spec: ScheduleSpec,
    rules: ScheduleRules,
    tenant_id: str | None,
    actor: str | None = None,
    now: datetime | None = None,
) -> Schedule:
    now = now or utcnow()
    await _validate(session, spec, rules, now)
    schedule = Schedule(id=uuid.uuid4(), tenant_id=tenant_id, created_by=actor, created_at=now)
    _apply(schedule, spec, now)
    session.add(schedule)
    await session.flush()
    changed(session, schedule)
    return schedule


async def get_schedule(
    *,
    session: AsyncSession,
    schedule_id: uuid.UUID,
    tenant_id: str | None = None,
    for_update: bool = False,
) -> Schedule:
    stmt = of_tenant(
        select(Schedule).where(Schedule.id == schedule_id), Schedule.tenant_id, tenant_id
    )
    missing = NotFound(f"schedule {schedule_id} not found", field="id")
    found: Schedule = await one(session, stmt, missing, for_update=for_update)
    return found


async def update_schedule(
    *,
    session: AsyncSession,
    schedule_id: uuid.UUID,
    spec: ScheduleSpec,
    rules: ScheduleRules,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Replace a schedule's definition; its next tick is computed again from now."""
    now = now or utcnow()
    schedule = await get_schedule(
        session=session, schedule_id=schedule_id, tenant_id=tenant_id, for_update=True
    )
    await _validate(session, spec, rules, now)
    _apply(schedule, spec, now)
    await session.flush()
    changed(session, schedule)
    return schedule


async def set_paused(
    *,
    session: AsyncSession,
    schedule_id: uuid.UUID,
    paused: bool,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Pause, or resume from now on (ticks that passed while paused are not caught up)."""
    now = now or utcnow()
    schedule = await get_schedule(
        session=session, schedule_id=schedule_id, tenant_id=tenant_id, for_update=True
    )
    if not paused and schedule.paused:
        schedule.next_fire_at = next_after(schedule.cron, zone(schedule.timezone), now)[0]
    schedule.paused = paused
    schedule.updated_at = now
    await session.flush()
    changed(session, schedule)
    return schedule


async def delete_schedule(
    *, session: AsyncSession, schedule_id: uuid.UUID, tenant_id: str | None = None
) -> Schedule:
    schedule = await get_schedule(
        session=session, schedule_id=schedule_id, tenant_id=tenant_id, for_update=True
    )
    await session.execute(delete(Schedule).where(Schedule.id == schedule.id))
    changed(session, schedule)
    return schedule


async def trigger_schedule(
    *,
    session: AsyncSession,
    schedule_id: uuid.UUID,
    rules: ScheduleRules,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> ScheduleFire:
    """Run it now, whatever its ticks (a manual fire, recorded among its runs)."""
    now = now or utcnow()
    schedule = await get_schedule(
        session=session, schedule_id=schedule_id, tenant_id=tenant_id, for_update=True
    )
    fire = await claim(session, schedule.id, now, manual=True)
    assert fire is not None, "a manual fire has a time of its own"
    await start(session, schedule, fire, rules)
    changed(session, schedule)
    return fire


async def claim(
    session: AsyncSession, schedule_id: uuid.UUID, tick: datetime, *, manual: bool = False
) -> ScheduleFire | None:
    """The fire of `tick`, or None when that tick has fired already (the row is unique on
    schedule and time: whatever the workers, restarts or flushes, a tick runs at most once)."""
    return (await claim_many(session, [(schedule_id, tick)], manual=manual)).get(
        (schedule_id, tick)
    )


CLAIM_CHUNK = 5000  # rows of 5 parameters per statement


async def claim_many(
    session: AsyncSession, ticks: Sequence[tuple[uuid.UUID, datetime]], *, manual: bool = False
) -> dict[tuple[uuid.UUID, datetime], ScheduleFire]:
    """`claim` for many ticks in one statement: the fires of those not fired before."""
    if not ticks:
        return {}
    now = utcnow()
    rows = [
        {
            "schedule_id": schedule_id,
            "fire_time": tick,
            "outcome": Outcome.STARTED,
            "manual": manual,
            "created_at": now,
        }
        for schedule_id, tick in ticks
    ]
    fires: list[ScheduleFire] = []
    # a statement holds at most 32,767 parameters (asyncpg): a pass after a long outage may
    # claim 100 schedules' 101 ticks each
    for first in range(0, len(rows), CLAIM_CHUNK):
        stmt = (
            insert(ScheduleFire)
            .values(rows[first : first + CLAIM_CHUNK])
            .on_conflict_do_nothing(constraint=UNIQUE_TICK)
            .returning(ScheduleFire)
        )
        fires += (await session.scalars(stmt)).all()
    return {(f.schedule_id, f.fire_time): f for f in fires}


async def start(
    session: AsyncSession,
    schedule: Schedule,
    fire: ScheduleFire,
    rules: ScheduleRules,
    deferred: list[Task] | None = None,
) -> None:
    """Start the fire's run as the overlap policy says; a run that cannot start (its type is
    gone, its input no longer fits) fails the fire, never the pass. With `deferred`, a task
    run is made and validated but left there for the caller to store with the others of its
    pass (one statement for all; its type known already: `submissions.know_types`)."""
    previous = None
    if not fire.manual and schedule.overlap != Overlap.ALLOW:
        pending = {t.id for t in deferred or ()}
        previous = await _unfinished_previous(session, schedule, fire, pending)
    if previous is not None:
        if schedule.overlap == Overlap.SKIP:
            fire.outcome = Outcome.SKIPPED
            fire.message = f"the previous run ({previous}) is unfinished"
            return
        if schedule.overlap == Overlap.CANCEL_PREVIOUS:
            await _cancel(session, previous)
    if schedule.task_type is not None and deferred is not None:
        try:
            task = submissions.new_task(_run_spec(schedule, fire), rules.task_defaults)
        except DomainError as exc:
            fire.outcome = Outcome.FAILED
            fire.message = exc.message[:2000]
            return
        deferred.append(task)
        fire.task_id = task.id
        return
    try:
        async with session.begin_nested():
            if schedule.task_type is not None:
                task = await submissions.submit_task(
                    session=session,
                    spec=_run_spec(schedule, fire),
                    defaults=rules.task_defaults,
                )
                fire.task_id = task.id
            else:
                assert schedule.workflow is not None
                wf_spec = workflow_of(schedule.workflow)
                wf_spec.origin_tenant_id = schedule.tenant_id
                wf_spec.origin_instance = "schedule"
                wf_spec.origin_reference = str(schedule.id)
                wf = await workflows.create_workflow(
                    session=session, spec=wf_spec, defaults=rules.task_defaults
                )
                fire.workflow_id = wf.id
    except DomainError as exc:
        fire.outcome = Outcome.FAILED
        fire.message = exc.message[:2000]
    except Exception as exc:  # never the pass: the other schedules fire on
        ref = uuid.uuid4().hex[:12]
        log.error("schedule %s: its run could not start (ref %s)", schedule.id, ref, exc_info=exc)
        fire.outcome = Outcome.FAILED
        fire.message = f"internal error (ref {ref})"


def _run_spec(schedule: Schedule, fire: ScheduleFire) -> task_specs.TaskSpec:
    """The task a fire of a task schedule submits."""
    spec = ScheduleSpec(
        name=schedule.name, cron=schedule.cron, task_type=schedule.task_type, input=schedule.input
    )
    task_spec = _task_spec(spec, schedule.tenant_id, schedule.id)
    task_spec.metadata["fire_time"] = fire.fire_time.isoformat()
    return task_spec


async def _unfinished_previous(
    session: AsyncSession, schedule: Schedule, fire: ScheduleFire, pending: set[uuid.UUID]
) -> str | None:
    """The id of the run of the latest earlier fire if it has not finished (`pending`: tasks
    made in this pass, not stored yet)."""
    last = (
        await session.execute(
            select(ScheduleFire)
            .where(
                ScheduleFire.schedule_id == schedule.id,
                ScheduleFire.id != fire.id,
                ScheduleFire.outcome == Outcome.STARTED,
            )
            .order_by(ScheduleFire.fire_time.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if last is None:
        return None
    if last.task_id in pending:
        return f"task {last.task_id}"
    if last.task_id is not None:
        status = await session.scalar(select(Task.status).where(Task.id == last.task_id))
        unfinished = status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
        return f"task {last.task_id}" if unfinished else None
    if last.workflow_id is not None:
        status = await session.scalar(
            select(Workflow.status).where(Workflow.id == last.workflow_id)
        )
        unfinished = status in workflow_definitions.ACTIVE
        return f"workflow {last.workflow_id}" if unfinished else None
    return None


async def _cancel(session: AsyncSession, previous: str) -> None:
    kind, raw = previous.split(" ", 1)
    try:
        if kind == "task":
            await tasks.cancel_task(
                session=session, task_id=uuid.UUID(raw), reason="a newer run of its schedule"
            )
        else:
            await workflows.cancel_workflow(session=session, workflow_id=uuid.UUID(raw))
    except DomainError:  # it finished meanwhile
        pass
