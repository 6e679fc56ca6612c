"""Workflows: a DAG of steps on the task lifecycle.

A step becomes a task when all its dependencies completed, with inputs mapped from their
results. Step and workflow state follow their tasks inside the same transaction as the task's
own change (`react`, registered with the task core's reactions and run by the unit of
work before commit), under a lock on the workflow
row, so concurrent completions of parallel steps schedule their successor exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Workflow, WorkflowStep
from app.kernel import effects
from app.kernel.errors import InvalidTransition, NotFound
from app.services.tasks import reactions
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from app.services.tasks import types as task_types
from app.services.tasks.lifecycle import TaskStatus
from app.services.webhooks import deliveries as webhooks
from app.services.workflows.definitions import (
    ACTIVE,
    SCHEDULING,
    StepStatus,
    WorkflowSpec,
    WorkflowStatus,
    mappings,
    validate,
)
from app.services.workflows.queries import scoped

# --- creation and reading -----------------------------------------------------------------


async def create_workflow(
    *, session: AsyncSession, spec: WorkflowSpec, defaults: task_specs.TaskDefaults
) -> Workflow:
    order = validate(spec, defaults=defaults)
    now = utcnow()
    wf = Workflow(
        id=uuid.uuid4(),
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
        task_type, operation = task_types.resolve(s.task_type, s.operation)
        step = WorkflowStep(
            id=uuid.uuid4(),
            workflow_id=wf.id,
            step_id=s.step_id,
            position=position[s.step_id],
            declared=i,
            task_type=task_type,
            operation=operation,
            queue=s.queue or ("llm" if task_type == "llm" else "default"),
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
    await _schedule_ready(session, wf, steps)
    _changed(session, wf)
    return wf


async def get_workflow(
    *,
    session: AsyncSession,
    workflow_id: uuid.UUID,
    tenant_id: str | None = None,
    for_update: bool = False,
) -> Workflow:
    stmt = scoped(select(Workflow).where(Workflow.id == workflow_id), tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    wf: Workflow | None = (await session.execute(stmt)).scalar_one_or_none()
    if wf is None:
        raise NotFound(f"workflow {workflow_id} not found", field="id")
    return wf


async def steps_of(
    *, session: AsyncSession, workflow_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WorkflowStep]]:
    stmt = (
        select(WorkflowStep)
        .where(WorkflowStep.workflow_id.in_(workflow_ids))
        .order_by(WorkflowStep.workflow_id, WorkflowStep.position)
    )
    out: dict[uuid.UUID, list[WorkflowStep]] = {i: [] for i in workflow_ids}
    for step in (await session.execute(stmt)).scalars():
        out[step.workflow_id].append(step)
    return out


# --- the engine ---------------------------------------------------------------------------


class MappingError(Exception):
    pass


def extract(result: Any, path: str) -> Any:
    """Follow a dotted path ('value', 'items.0.text') into a step's result."""
    value = result
    for part in [p for p in path.split(".") if p] if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            raise MappingError(f"path {path!r} not found in the result")
    return value


async def _schedule_ready(session: AsyncSession, wf: Workflow, steps: list[WorkflowStep]) -> None:
    if wf.status not in SCHEDULING:
        return
    done = {s.step_id: s for s in steps if s.status == StepStatus.COMPLETED}
    for step in sorted(steps, key=lambda s: s.position):
        if step.status != StepStatus.PENDING or step.task_id is not None:
            continue
        if not all(dep in done for dep in step.dependencies):
            continue
        data = dict(step.input)
        try:
            for m in step.input_mappings:
                data[m["to"]] = extract(done[m["from_step"]].result, m.get("path", ""))
        except MappingError as exc:
            step.status = StepStatus.FAILED.value
            step.error_message = f"input mapping failed: {exc}"
            step.completed_at = utcnow()
            await _fail(session, wf, steps, f"step {step.step_id!r} {step.error_message}")
            return
        task = await task_submissions.submit_task(
            session=session,
            spec=task_specs.TaskSpec(
                task_type=step.task_type,
                operation=step.operation,
                queue=step.queue,
                priority=wf.priority,
                input=data,
                config=step.config,
                metadata={"workflow_id": str(wf.id), "step_id": step.step_id},
                origin_instance=wf.origin_instance,
                origin_zone=wf.origin_zone,
                origin_tenant_id=wf.origin_tenant_id,
                origin_reference=wf.origin_reference,
                max_retries=step.max_retries,
                workflow_id=wf.id,
                workflow_step_id=step.id,
            ),
        )
        step.task_id = task.id


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
    wf = await get_workflow(
        session=session, workflow_id=uuid.UUID(snap["workflow_id"]), for_update=True
    )
    _remember(session, wf)
    steps = (await steps_of(session=session, workflow_ids=[wf.id]))[wf.id]
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
        await _schedule_ready(session, wf, steps)
    elif status == TaskStatus.FAILED:
        step.status = StepStatus.FAILED.value
        errors = snap.get("errors") or []
        step.error_message = errors[-1] if errors else "failed"
        step.completed_at = datetime.fromisoformat(snap["completed_at"])
        if wf.status in ACTIVE:
            await _fail(session, wf, steps, f"step {step.step_id!r} failed: {step.error_message}")
    elif status == TaskStatus.CANCELLED:
        step.status = StepStatus.CANCELLED.value
        step.completed_at = datetime.fromisoformat(snap["completed_at"])
        if wf.status in ACTIVE:
            await _fail(session, wf, steps, f"step {step.step_id!r} was cancelled")
    _refresh(wf, steps)
    _changed(session, wf)


async def _fail(
    session: AsyncSession, wf: Workflow, steps: list[WorkflowStep], message: str
) -> None:
    """The workflow fails; steps that have not started are cancelled (running ones finish)."""
    wf.status = WorkflowStatus.FAILED.value
    wf.error_message = message
    wf.errors = [*wf.errors, message][-100:]
    wf.completed_at = utcnow()
    _stop_pending(session, steps, reason=message)


def _stop_pending(session: AsyncSession, steps: list[WorkflowStep], *, reason: str) -> None:
    for step in steps:
        if step.status == StepStatus.PENDING:
            step.status = StepStatus.CANCELLED.value
            step.error_message = step.error_message or f"not run: {reason}"[:2000]
            if step.task_id is not None:
                # Its task is queued: cancel it after commit, outside the workflow lock.
                effects.record(session, effects.CancelTask(str(step.task_id)))


def _refresh(wf: Workflow, steps: list[WorkflowStep]) -> None:
    now = utcnow()
    wf.updated_at = now
    wf.completed_steps = sum(1 for s in steps if s.status == StepStatus.COMPLETED)
    wf.progress = round(wf.completed_steps / wf.total_steps * 100, 2) if wf.total_steps else 0.0
    running = [s.step_id for s in steps if s.status == StepStatus.RUNNING]
    wf.current_step = ", ".join(running)[:2000] or None
    if wf.status in SCHEDULING and wf.completed_steps == wf.total_steps:
        wf.status = WorkflowStatus.COMPLETED.value
        wf.completed_at = now
        final = wf.final_step_id or max(steps, key=lambda s: s.position).step_id
        wf.result = next(s.result for s in steps if s.step_id == final)


WEBHOOK_QUEUE = "default"  # workflow webhooks are delivered by workers of this queue
FINISHED = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})
_BEFORE = "opsgraph.workflows.status_before"


def _remember(session: AsyncSession, wf: Workflow) -> None:
    """Note the status a workflow had when this transaction first locked it."""
    session.info.setdefault(_BEFORE, {}).setdefault(str(wf.id), wf.status)


def _changed(session: AsyncSession, wf: Workflow) -> None:
    effects.record(session, effects.WorkflowChanged(str(wf.id), wf.status, wf.origin_tenant_id))
    # Notify once, when the workflow enters a final status in this transaction.
    before: dict[str, str | None] = session.info.setdefault(_BEFORE, {})
    if wf.webhook_url and wf.status in FINISHED and before.get(str(wf.id)) != wf.status:
        before[str(wf.id)] = wf.status
        webhooks.schedule(
            session,
            kind="workflow",
            object_id=str(wf.id),
            url=wf.webhook_url,
            payload=webhooks.workflow_payload(wf),
            queue=WEBHOOK_QUEUE,
            tenant_id=wf.origin_tenant_id,
        )


# --- operator actions ---------------------------------------------------------------------


class Action(Protocol):
    async def __call__(
        self, *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
    ) -> Workflow: ...


async def _locked(
    session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None
) -> tuple[Workflow, list[WorkflowStep]]:
    wf = await get_workflow(
        session=session, workflow_id=workflow_id, tenant_id=tenant_id, for_update=True
    )
    _remember(session, wf)
    return wf, (await steps_of(session=session, workflow_ids=[wf.id]))[wf.id]


async def pause_workflow(
    *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
) -> Workflow:
    wf, steps = await _locked(session, workflow_id, tenant_id)
    if wf.status not in SCHEDULING:
        raise InvalidTransition(f"a {wf.status} workflow cannot be paused", field="id")
    wf.status = WorkflowStatus.PAUSED.value
    _refresh(wf, steps)
    _changed(session, wf)
    return wf


async def resume_workflow(
    *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
) -> Workflow:
    wf, steps = await _locked(session, workflow_id, tenant_id)
    if wf.status != WorkflowStatus.PAUSED:
        raise InvalidTransition(f"a {wf.status} workflow cannot be resumed", field="id")
    wf.status = (WorkflowStatus.RUNNING if wf.started_at else WorkflowStatus.PENDING).value
    await _schedule_ready(session, wf, steps)
    _refresh(wf, steps)
    _changed(session, wf)
    return wf


async def cancel_workflow(
    *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
) -> Workflow:
    wf, steps = await _locked(session, workflow_id, tenant_id)
    if wf.status not in ACTIVE:
        raise InvalidTransition(f"a {wf.status} workflow cannot be cancelled", field="id")
    wf.status = WorkflowStatus.CANCELLED.value
    wf.completed_at = utcnow()
    _stop_pending(session, steps, reason="workflow cancelled")
    for step in steps:
        if step.status == StepStatus.RUNNING and step.task_id is not None:
            effects.record(session, effects.CancelTask(str(step.task_id)))
    _refresh(wf, steps)
    _changed(session, wf)
    return wf


async def retry_workflow(
    *, session: AsyncSession, workflow_id: uuid.UUID, tenant_id: str | None = None
) -> Workflow:
    """Rerun the failed or cancelled steps and everything that depends on them."""
    wf, steps = await _locked(session, workflow_id, tenant_id)
    if wf.status not in (WorkflowStatus.FAILED, WorkflowStatus.CANCELLED):
        raise InvalidTransition(f"a {wf.status} workflow cannot be retried", field="id")
    rerun = {s.step_id for s in steps if s.status in (StepStatus.FAILED, StepStatus.CANCELLED)}
    for step in sorted(steps, key=lambda s: s.position):
        if any(dep in rerun for dep in step.dependencies):
            rerun.add(step.step_id)
    for step in steps:
        if step.step_id in rerun and step.status != StepStatus.RUNNING:
            step.status = StepStatus.PENDING.value
            step.task_id = None
            step.result = None
            step.error_message = None
            step.retry_count = 0
            step.started_at = None
            step.completed_at = None
    wf.status = (WorkflowStatus.RUNNING if wf.started_at else WorkflowStatus.PENDING).value
    wf.error_message = None
    wf.completed_at = None
    wf.result = None
    await _schedule_ready(session, wf, steps)
    _refresh(wf, steps)
    _changed(session, wf)
    return wf


def register() -> None:
    """React to every change of a step's task inside its transaction (app/edge/domains.py)."""
    reactions.register("workflows", react, workflow_steps=True)
