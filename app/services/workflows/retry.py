"""Retrying a failed or cancelled workflow: its failed or cancelled steps and those after them
run again, some with a new input (checked as a submission's is, refused naming the step)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Workflow, WorkflowStep
from app.kernel.errors import DomainError, InvalidInput, InvalidTransition
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from app.services.workflows.definitions import StepKind, StepStatus, WorkflowStatus
from app.services.workflows.engine import locked
from app.services.workflows.scheduling import changed, refresh, schedule_ready


@dataclass(frozen=True)
class StepInput:
    """A new input for a step that runs again when its workflow is retried."""

    step_id: str
    input: dict[str, Any]


async def retry_workflow(
    *,
    session: AsyncSession,
    workflow_id: uuid.UUID,
    tenant_id: str | None = None,
    inputs: Sequence[StepInput] = (),
    defaults: task_specs.TaskDefaults = task_specs.TaskDefaults(),
) -> Workflow:
    """Rerun the failed or cancelled steps and everything that depends on them, `inputs`
    replacing the inputs of steps that run again (each checked as a submission's is when the
    step maps nothing into it, else when it starts, as at creation); a refusal names the
    field and changes nothing."""
    wf, steps = await locked(session, workflow_id, tenant_id)
    if wf.status not in (WorkflowStatus.FAILED, WorkflowStatus.CANCELLED):
        raise InvalidTransition(f"a {wf.status} workflow cannot be retried", field="id")
    rerun = {s.step_id for s in steps if s.status in (StepStatus.FAILED, StepStatus.CANCELLED)}
    for step in sorted(steps, key=lambda s: s.position):
        if any(dep in rerun for dep in step.dependencies):
            rerun.add(step.step_id)
    edited = await _edited_inputs(session, steps, rerun, inputs, defaults)
    for step in steps:
        if step.step_id in rerun and step.status != StepStatus.RUNNING:
            step.status = StepStatus.PENDING.value
            step.task_id = None
            step.result = None
            step.error_message = None
            step.retry_count = 0
            step.started_at = None
            step.completed_at = None
            step.wait_until = None
            step.decided_by = None
            step.decision_note = None
        if step.step_id in edited:
            step.input = edited[step.step_id]
    wf.status = (WorkflowStatus.RUNNING if wf.started_at else WorkflowStatus.PENDING).value
    wf.error_message = None
    wf.completed_at = None
    wf.result = None
    await schedule_ready(session, wf, steps)
    refresh(wf, steps)
    changed(session, wf)
    return wf


async def _edited_inputs(
    session: AsyncSession,
    steps: list[WorkflowStep],
    rerun: set[str],
    inputs: Sequence[StepInput],
    defaults: task_specs.TaskDefaults,
) -> dict[str, dict[str, Any]]:
    """The new inputs by step id, each refused naming `steps[i]...` unless its step is a TASK
    step that runs again and (when nothing maps into it) its type takes the input."""
    by_id = {s.step_id: s for s in steps}
    await task_submissions.know_types(
        (by_id[i.step_id].task_type for i in inputs if i.step_id in by_id),
        lambda: nullcontext(session),
    )
    edited: dict[str, dict[str, Any]] = {}
    for i, edit in enumerate(inputs):
        step = by_id.get(edit.step_id)
        where = f"steps[{i}]"
        if step is None:
            raise InvalidInput(f"no step {edit.step_id!r}", field=f"{where}.step_id")
        if edit.step_id in edited:
            raise InvalidInput(f"step {edit.step_id!r} given twice", field=f"{where}.step_id")
        if edit.step_id not in rerun or step.status == StepStatus.RUNNING:
            raise InvalidInput(
                f"step {edit.step_id!r} does not run again: only the failed or cancelled steps "
                "and those after them take a new input",
                field=f"{where}.step_id",
            )
        if step.kind != StepKind.TASK:
            raise InvalidInput(
                f"step {edit.step_id!r} is a {step.kind} step: it takes no input",
                field=f"{where}.step_id",
            )
        if not step.input_mappings:
            try:
                task_specs.validate(
                    task_specs.TaskSpec(
                        task_type=step.task_type,
                        operation=step.operation,
                        queue=step.queue,
                        input=edit.input,
                    ),
                    defaults,
                )
            except DomainError as exc:
                raise InvalidInput(
                    f"step {edit.step_id!r}: {exc.message}",
                    field=f"{where}.{exc.field or 'input'}",
                ) from exc
        edited[edit.step_id] = edit.input
    return edited
