"""How a workflow moves on: a step becomes a task once all its dependencies completed, its
inputs mapped from their results; a failure stops the steps that have not started; progress,
the running steps and completion follow the steps; every change is recorded (an event, and a
webhook when the workflow finishes). The engine (engine.py) calls these under the workflow's
lock, inside the transaction of the change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task, Workflow, WorkflowStep
from app.kernel import effects
from app.kernel.errors import DomainError
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from app.services.webhooks import deliveries as webhooks
from app.services.workflows.definitions import SCHEDULING, StepKind, StepStatus, WorkflowStatus


class MappingError(Exception):
    """An input mapping names a path its step's result does not have."""


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


async def schedule_ready(session: AsyncSession, wf: Workflow, steps: list[WorkflowStep]) -> None:
    """Submit a task for each pending step whose dependencies all completed (in topological
    order); a mapping that fails fails its step and the workflow."""
    if wf.status not in SCHEDULING:
        return
    done = {s.step_id: s for s in steps if s.status == StepStatus.COMPLETED}
    for step in sorted(steps, key=lambda s: s.position):
        if step.status != StepStatus.PENDING or step.task_id is not None:
            continue
        if not all(dep in done for dep in step.dependencies):
            continue
        if step.kind != StepKind.TASK:
            start_wait(wf, step)
            continue
        data = dict(step.input)
        try:
            for m in step.input_mappings:
                data[m["to"]] = extract(done[m["from_step"]].result, m.get("path", ""))
        except MappingError as exc:
            step.status = StepStatus.FAILED.value
            step.error_message = f"input mapping failed: {exc}"
            step.completed_at = utcnow()
            await fail(session, wf, steps, f"step {step.step_id!r} {step.error_message}")
            return
        try:
            task = await _submit_step(session, wf, step, data)
        except DomainError as exc:
            # the type's schema refused what the step and its mappings bring: nothing was
            # written for it; the step fails naming the field
            step.status = StepStatus.FAILED.value
            step.error_message = f"input refused ({exc.field or 'input'}): {exc.message}"[:2000]
            step.completed_at = utcnow()
            await fail(session, wf, steps, f"step {step.step_id!r} {step.error_message}")
            return
        step.task_id = task.id


async def _submit_step(
    session: AsyncSession, wf: Workflow, step: WorkflowStep, data: dict[str, Any]
) -> Task:
    return await task_submissions.submit_task(
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
            # a workflow created to start later: its first steps wait for that time
            run_at=wf.run_at,
        ),
    )


async def fail(
    session: AsyncSession, wf: Workflow, steps: list[WorkflowStep], message: str
) -> None:
    """The workflow fails; steps that have not started are cancelled (running ones finish)."""
    wf.status = WorkflowStatus.FAILED.value
    wf.error_message = message
    wf.errors = [*wf.errors, message][-100:]
    wf.completed_at = utcnow()
    stop_pending(session, steps, reason=message)


def start_wait(wf: Workflow, step: WorkflowStep) -> None:
    """A waiting step starts waiting: durable (its row says until when), holding no worker.
    The ticker (waiting.py) ends a sleep or a timeout; approveStep, rejectStep and
    signalWorkflow end the others."""
    now = utcnow()
    wait = step.wait or {}
    step.status = StepStatus.RUNNING.value
    step.started_at = now
    if step.kind == StepKind.SLEEP:
        until = wait.get("until")
        step.wait_until = (
            datetime.fromisoformat(until)
            if until
            else now + timedelta(seconds=float(wait.get("sleep_seconds") or 0))
        )
    elif wait.get("timeout_seconds") is not None:
        step.wait_until = now + timedelta(seconds=float(wait["timeout_seconds"]))
    if wf.status == WorkflowStatus.PENDING:
        wf.status = WorkflowStatus.RUNNING.value
    wf.started_at = wf.started_at or now


def stop_pending(session: AsyncSession, steps: list[WorkflowStep], *, reason: str) -> None:
    """Cancel the steps that have not started, and those that wait (no task runs them)."""
    for step in steps:
        waiting = step.status == StepStatus.RUNNING and step.kind != StepKind.TASK
        if waiting:
            step.wait_until = None
            step.completed_at = utcnow()
        if step.status == StepStatus.PENDING or waiting:
            step.status = StepStatus.CANCELLED.value
            step.error_message = step.error_message or f"not run: {reason}"[:2000]
            if step.task_id is not None:
                # Its task is queued: cancel it after commit, outside the workflow lock.
                effects.record(session, effects.CancelTask(str(step.task_id)))


def refresh(wf: Workflow, steps: list[WorkflowStep]) -> None:
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


def remember(session: AsyncSession, wf: Workflow) -> None:
    """Note the status a workflow had when this transaction first locked it."""
    session.info.setdefault(_BEFORE, {}).setdefault(str(wf.id), wf.status)


def changed(session: AsyncSession, wf: Workflow) -> None:
    effects.record(session, effects.WorkflowChanged(str(wf.id), wf.status, wf.origin_tenant_id))
    # Notify once, when the workflow enters a final status in this transaction.
    before: dict[str, str | None] = session.info.setdefault(_BEFORE, {})
    if wf.webhook_url and wf.status in FINISHED and before.get(str(wf.id)) != wf.status:
        before[str(wf.id)] = wf.status
        webhooks.notify_workflow(session, wf, queue=WEBHOOK_QUEUE)
