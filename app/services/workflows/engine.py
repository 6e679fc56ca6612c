"""Workflows: a DAG of steps on the task lifecycle; created, read, and moved on by operators
(pause, resume, cancel, retry) and by their steps' tasks.

Step and workflow state follow their tasks inside the same transaction as the task's own
change (`react`, registered with the task core's reactions and run by the unit of work before
commit), under a lock on the workflow row, so concurrent completions of parallel steps
schedule their successor exactly once. What a change does to a workflow (which steps run
next, what a failure stops, progress and completion) is scheduling.py's."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Workflow, WorkflowStep
from app.kernel import effects
from app.kernel.errors import InvalidTransition, NotFound
from app.services.rows import grouped, one
from app.services.tasks import idempotency, reactions
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from app.services.tasks import types as task_types
from app.services.tasks.lifecycle import TaskStatus
from app.services.workflows.definitions import (
    ACTIVE,
    SCHEDULING,
    StepKind,
    StepStatus,
    WorkflowSpec,
    WorkflowStatus,
    mappings,
    validate,
)
from app.services.workflows.queries import scoped
from app.services.workflows.scheduling import (
    changed,
    fail,
    refresh,
    remember,
    schedule_ready,
    stop_pending,
)

# --- creation and reading -----------------------------------------------------------------


async def create_workflow(
    *, session: AsyncSession, spec: WorkflowSpec, defaults: task_specs.TaskDefaults
) -> Workflow:
    return (await create_workflow_once(session=session, spec=spec, defaults=defaults)).workflow


@dataclass(frozen=True)
class Created:
    workflow: Workflow
    # the workflow an earlier creation with the same idempotency key made
    replayed: bool = False


async def create_workflow_once(
    *, session: AsyncSession, spec: WorkflowSpec, defaults: task_specs.TaskDefaults
) -> Created:
    """Create the workflow and schedule its first steps; with an idempotency key given the
    same request before, the workflow that made (`replayed`)."""
    await task_submissions.know_types(
        (s.task_type for s in spec.steps if s.task_type), lambda: nullcontext(session)
    )
    order = validate(spec, defaults=defaults)
    now = utcnow()
    workflow_id = uuid.uuid4()
    if spec.idempotency_key is not None:
        claim = idempotency.Claim(
            spec.origin_tenant_id,
            spec.idempotency_key,
            "workflow",
            idempotency.fingerprint(spec),
        )
        earlier = await idempotency.claim(
            session, claim, workflow_id, now=now, ttl=defaults.idempotency_ttl_seconds
        )
        if earlier is not None:
            found = await get_workflow(
                session=session, workflow_id=earlier, tenant_id=spec.origin_tenant_id
            )
            return Created(found, replayed=True)
    wf = Workflow(
        id=workflow_id,
        name=spec.name.strip(),
        description=spec.description,
        status=WorkflowStatus.PENDING.value,
        config=spec.config,
        webhook_url=spec.webhook_url,
        origin_instance=spec.origin_instance,
        origin_zone=spec.origin_zone,
        origin_tenant_id=spec.origin_tenant_id,
        origin_reference=spec.origin_reference,
        final_step_id=spec.final_step_id,
        run_at=task_specs.when(spec.run_at, spec.delay_seconds, defaults, now),
        priority=spec.priority,
        total_steps=len(spec.steps),
        completed_steps=0,
        progress=0.0,
        errors=[],
        created_at=now,
        updated_at=now,
    )
    session.add(wf)
    position = {sid: i for i, sid in enumerate(order)}
    steps = []
    for i, s in enumerate(spec.steps):
        if s.kind == StepKind.TASK:
            resolved = task_types.resolve(s.task_type, s.operation)
            task_type, operation = resolved.task_type, resolved.operation
            queue = s.queue or _default_queue(resolved)
        else:  # a waiting step runs no task: its kind names it
            task_type, operation, queue = s.kind.value.lower(), None, "-"
        step = WorkflowStep(
            id=uuid.uuid4(),
            workflow_id=wf.id,
            step_id=s.step_id,
            position=position[s.step_id],
            declared=i,
            task_type=task_type,
            operation=operation,
            queue=queue,
            kind=s.kind.value,
            wait=s.wait(),
            dependencies=list(s.dependencies),
            input_mappings=[m.as_dict() for m in mappings(s, i)],
            input=s.input,
            config=s.config,
            max_retries=s.max_retries,
            retry_count=0,
            status=StepStatus.PENDING.value,
        )
        steps.append(step)
    session.add_all(steps)
    await session.flush()
    await schedule_ready(session, wf, steps)
    changed(session, wf)
    return Created(wf)


def _default_queue(resolved: task_types.Resolved) -> str:
    """A step's queue when it names none: its type's (opsgraph's llm: llm, echo: default)."""
    if resolved.registered is not None:
        return resolved.registered.queue
    return "llm" if resolved.task_type == "llm" else "default"


async def get_workflow(
    *,
    session: AsyncSession,
    workflow_id: uuid.UUID,
    tenant_id: str | None = None,
    for_update: bool = False,
) -> Workflow:
    stmt = scoped(select(Workflow).where(Workflow.id == workflow_id), tenant_id)
    missing = NotFound(f"workflow {workflow_id} not found", field="id")
    wf: Workflow = await one(session, stmt, missing, for_update=for_update)
    return wf


async def workflows_by_id(
    *, session: AsyncSession, workflow_ids: Sequence[uuid.UUID], tenant_id: str | None = None
) -> dict[uuid.UUID, Workflow]:
    """The workflows of these ids that the tenant (or, unscoped, anyone) may read."""
    stmt = scoped(select(Workflow).where(Workflow.id.in_(workflow_ids)), tenant_id)
    return {wf.id: wf for wf in (await session.execute(stmt)).scalars()}


async def steps_of(
    *, session: AsyncSession, workflow_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WorkflowStep]]:
    stmt = select(WorkflowStep).where(WorkflowStep.workflow_id.in_(workflow_ids))
    stmt = stmt.order_by(WorkflowStep.workflow_id, WorkflowStep.position)
    return await grouped(session, stmt, lambda step: step.workflow_id, workflow_ids)


async def locked(
    session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
) -> tuple[Workflow, list[WorkflowStep]]:
    """The workflow, locked for this transaction (its status before noted), and its steps."""
    wf = await get_workflow(
        session=session, workflow_id=workflow_id, tenant_id=tenant_id, for_update=True
    )
    remember(session, wf)
    return wf, (await steps_of(session=session, workflow_ids=[wf.id]))[wf.id]


# --- the steps' tasks ---------------------------------------------------------------------


_SEEN = "opsgraph.workflows.seen"


async def react(session: AsyncSession) -> None:
    """Bring workflows up to date with the task changes recorded in this transaction,
    including those this reaction itself causes (new step tasks, cancels)."""
    seen: set[tuple[str, str, str]] = session.info.setdefault(_SEEN, set())
    while True:
        todo = []
        for e in effects.peek(session):
            if isinstance(e, effects.TaskChanged) and e.snapshot.get("workflow_id"):
                key = (e.snapshot["id"], e.snapshot["status"], e.snapshot["updated_at"])
                if key not in seen:
                    seen.add(key)
                    todo.append(e.snapshot)
        if not todo:
            return
        for snapshot in todo:
            await _on_task_changed(session, snapshot)


async def _on_task_changed(session: AsyncSession, snap: dict[str, Any]) -> None:
    wf, steps = await locked(session, uuid.UUID(snap["workflow_id"]))
    step = next((s for s in steps if str(s.id) == snap["workflow_step_id"]), None)
    if step is None or str(step.task_id) != snap["id"]:
        return  # a task from before a retry of the workflow: no longer this step's task
    status = snap["status"]
    step.retry_count = int(snap.get("retry_count") or 0)
    if status == TaskStatus.RUNNING:
        step.status = StepStatus.RUNNING.value
        step.started_at = step.started_at or datetime.fromisoformat(snap["started_at"])
        if wf.status == WorkflowStatus.PENDING:
            wf.status = WorkflowStatus.RUNNING.value
        wf.started_at = wf.started_at or step.started_at
    elif status == TaskStatus.COMPLETED:
        step.status = StepStatus.COMPLETED.value
        step.result = snap.get("result")
        step.error_message = None
        step.completed_at = datetime.fromisoformat(snap["completed_at"])
        await schedule_ready(session, wf, steps)
    elif status == TaskStatus.FAILED:
        step.status = StepStatus.FAILED.value
        errors = snap.get("errors") or []
        step.error_message = errors[-1] if errors else "failed"
        step.completed_at = datetime.fromisoformat(snap["completed_at"])
        if wf.status in ACTIVE:
            await fail(session, wf, steps, f"step {step.step_id!r} failed: {step.error_message}")
    elif status == TaskStatus.CANCELLED:
        step.status = StepStatus.CANCELLED.value
        step.completed_at = datetime.fromisoformat(snap["completed_at"])
        if wf.status in ACTIVE:
            await fail(session, wf, steps, f"step {step.step_id!r} was cancelled")
    refresh(wf, steps)
    changed(session, wf)


def register() -> None:
    """React to every change of a step's task inside its transaction (app/edge/domains.py)."""
    reactions.register("workflows", react, workflow_steps=True)


# --- operator actions ---------------------------------------------------------------------


class Action(Protocol):
    async def __call__(
        self, *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
    ) -> Workflow: ...


Change = Callable[[AsyncSession, Workflow, list[WorkflowStep]], Awaitable[None]]


def _action(change: Change) -> Action:
    """An operator's action: `change` done to the workflow under its lock (and to its steps),
    then its figures refreshed and the change recorded."""

    async def act(
        *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
    ) -> Workflow:
        wf, steps = await locked(session, workflow_id, tenant_id)
        await change(session, wf, steps)
        refresh(wf, steps)
        changed(session, wf)
        return wf

    act.__name__ = act.__qualname__ = change.__name__
    act.__doc__ = change.__doc__
    return act


@_action
async def pause_workflow(session: AsyncSession, wf: Workflow, steps: list[WorkflowStep]) -> None:
    """Start no more steps; running ones finish."""
    if wf.status not in SCHEDULING:
        raise InvalidTransition(f"a {wf.status} workflow cannot be paused", field="id")
    wf.status = WorkflowStatus.PAUSED.value


@_action
async def resume_workflow(session: AsyncSession, wf: Workflow, steps: list[WorkflowStep]) -> None:
    if wf.status != WorkflowStatus.PAUSED:
        raise InvalidTransition(f"a {wf.status} workflow cannot be resumed", field="id")
    wf.status = (WorkflowStatus.RUNNING if wf.started_at else WorkflowStatus.PENDING).value
    await schedule_ready(session, wf, steps)


@_action
async def cancel_workflow(session: AsyncSession, wf: Workflow, steps: list[WorkflowStep]) -> None:
    if wf.status not in ACTIVE:
        raise InvalidTransition(f"a {wf.status} workflow cannot be cancelled", field="id")
    wf.status = WorkflowStatus.CANCELLED.value
    wf.completed_at = utcnow()
    stop_pending(session, steps, reason="workflow cancelled")
    for step in steps:
        if step.status == StepStatus.RUNNING and step.task_id is not None:
            effects.record(session, effects.CancelTask(str(step.task_id)))
