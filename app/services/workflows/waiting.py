"""Workflow steps that wait: a sleep's end and a wait's timeout (the ticker's pass), and an
operator's approval or rejection, and a signal, each ending its step under the workflow's
lock and moving the workflow on as a task's completion would."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Workflow, WorkflowStep
from app.kernel.errors import InvalidInput, InvalidTransition, NotFound
from app.services.workflows.definitions import Decision, StepKind, StepStatus
from app.services.workflows.engine import locked
from app.services.workflows.scheduling import changed, fail, refresh, schedule_ready

# waits one pass ends at most
PASS_SIZE = 500


async def _complete(
    session: AsyncSession,
    wf: Workflow,
    steps: list[WorkflowStep],
    step: WorkflowStep,
    result: Any,
) -> None:
    step.status = StepStatus.COMPLETED.value
    step.result = result
    step.error_message = None
    step.wait_until = None
    step.completed_at = utcnow()
    await schedule_ready(session, wf, steps)


async def _fail(
    session: AsyncSession,
    wf: Workflow,
    steps: list[WorkflowStep],
    step: WorkflowStep,
    message: str,
) -> None:
    step.status = StepStatus.FAILED.value
    step.error_message = message[:2000]
    step.wait_until = None
    step.completed_at = utcnow()
    await fail(session, wf, steps, f"step {step.step_id!r} {message}"[:2000])


def _waiting(step: WorkflowStep) -> bool:
    return step.status == StepStatus.RUNNING and step.kind != StepKind.TASK


async def due_waits(session: AsyncSession, *, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(workflow id, step id) of the sleeps and waits whose time has come, earliest first.
    Read in a transaction of its own: each is then ended in one that locks its workflow first,
    the order every workflow change takes (workflow, then its steps)."""
    rows = (
        await session.execute(
            select(WorkflowStep.workflow_id, WorkflowStep.id)
            .where(
                WorkflowStep.wait_until.is_not(None),
                WorkflowStep.wait_until <= now,
                WorkflowStep.status == StepStatus.RUNNING.value,
            )
            .order_by(WorkflowStep.wait_until)
            .limit(PASS_SIZE)
        )
    ).all()
    return [(r[0], r[1]) for r in rows]


async def wake(
    session: AsyncSession, *, workflow_id: uuid.UUID, step_id: uuid.UUID, now: datetime
) -> bool:
    """End one sleep or time out one wait, if it is still due (False: someone ended it)."""
    wf, steps = await locked(session, workflow_id)
    step = next((s for s in steps if s.id == step_id), None)
    if step is None or not _waiting(step) or step.wait_until is None or step.wait_until > now:
        return False  # another pass ended it, or an operator did
    wait = step.wait or {}
    if step.kind == StepKind.SLEEP:
        await _complete(session, wf, steps, step, {"slept_until": step.wait_until.isoformat()})
    elif step.kind == StepKind.APPROVAL and wait.get("default_decision") == Decision.APPROVE:
        step.decided_by = "timeout"
        await _complete(session, wf, steps, step, {"approved": True, "by": "timeout"})
    elif step.kind == StepKind.APPROVAL and wait.get("default_decision") == Decision.REJECT:
        step.decided_by = "timeout"
        await _fail(session, wf, steps, step, "rejected: no decision before its timeout")
    else:
        waited = (
            "an approval" if step.kind == StepKind.APPROVAL else f"signal {wait.get('signal')!r}"
        )
        await _fail(session, wf, steps, step, f"timed out waiting for {waited}")
    refresh(wf, steps)
    changed(session, wf)
    return True


async def _waiting_step(
    session: AsyncSession,
    workflow_id: uuid.UUID,
    step_id: str,
    kind: StepKind,
    tenant_id: str | None,
) -> tuple[Workflow, list[WorkflowStep], WorkflowStep]:
    wf, steps = await locked(session, workflow_id, tenant_id)
    step = next((s for s in steps if s.step_id == step_id), None)
    if step is None:
        raise NotFound(f"workflow {workflow_id} has no step {step_id!r}", field="stepId")
    if step.kind != kind:
        raise InvalidInput(f"step {step_id!r} is a {step.kind} step, not {kind}", field="stepId")
    if not _waiting(step):
        raise InvalidTransition(f"step {step_id!r} is {step.status}, not waiting", field="stepId")
    return wf, steps, step


async def decide(
    *,
    session: AsyncSession,
    workflow_id: uuid.UUID,
    step_id: str,
    approve: bool,
    actor: str,
    note: str | None = None,
    tenant_id: str | None = None,
) -> Workflow:
    """An operator's decision on a waiting APPROVAL step: approved, it completes (its result
    says who and the note) and the next steps run; rejected, it fails the workflow with the
    note."""
    if note is not None and len(note) > 2000:
        raise InvalidInput("note is at most 2,000 characters", field="note")
    wf, steps, step = await _waiting_step(
        session, workflow_id, step_id, StepKind.APPROVAL, tenant_id
    )
    step.decided_by = actor
    step.decision_note = note
    if approve:
        await _complete(session, wf, steps, step, {"approved": True, "by": actor, "note": note})
    else:
        await _fail(session, wf, steps, step, f"rejected by {actor}: {note or 'no note'}")
    refresh(wf, steps)
    changed(session, wf)
    return wf


async def signal_workflow(
    *,
    session: AsyncSession,
    workflow_id: uuid.UUID,
    name: str,
    payload: Any = None,
    tenant_id: str | None = None,
) -> Workflow:
    """Complete the workflow's steps waiting for signal `name`, the payload as their result
    (later steps take it through their inputMappings)."""
    wf, steps = await locked(session, workflow_id, tenant_id)
    waiting = [
        s
        for s in steps
        if _waiting(s) and s.kind == StepKind.SIGNAL and (s.wait or {}).get("signal") == name
    ]
    if not waiting:
        raise NotFound(f"no step of workflow {workflow_id} waits for signal {name!r}", field="name")
    for step in waiting:
        await _complete(session, wf, steps, step, payload)
    refresh(wf, steps)
    changed(session, wf)
    return wf
