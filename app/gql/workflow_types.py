"""GraphQL object types of workflows and their steps (each step resolves its task through a
DataLoader)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.forward import Forwards
from app.gql.types import Task
from app.kernel.timing import duration_ms
from app.services.workflows.definitions import Decision, StepKind, StepStatus, WorkflowStatus

# the statuses of app/services/workflows/definitions.py, declared once
strawberry.enum(WorkflowStatus)
strawberry.enum(StepStatus)
strawberry.enum(StepKind, name="WorkflowStepKind", description="What a step runs or waits for.")
strawberry.enum(Decision, name="ApprovalDecision")


@strawberry.enum
class WorkflowErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    # a step naming a queue of opsgraph's own (the camera pipeline's)
    RESERVED_QUEUE = "RESERVED_QUEUE"
    # an idempotency key given before with a different request
    CONFLICT = "CONFLICT"


@strawberry.type
class WorkflowError:
    field: str | None
    code: WorkflowErrorCode
    message: str


@strawberry.type
class WorkflowStep(Forwards):
    task_id: strawberry.Private[uuid.UUID | None]
    id: uuid.UUID
    step_id: str
    task_type: str
    status: StepStatus
    dependencies: list[str]
    input_mappings: list[JSON]
    input: JSON = strawberry.field(
        description="The step's own input; its mappings' values are added when it starts."
    )
    config: JSON
    result: JSON | None
    error_message: str | None
    retry_count: int
    max_retries: int
    started_at: datetime | None
    completed_at: datetime | None
    kind: StepKind
    wait: JSON | None = strawberry.field(
        description="What a waiting step waits for (sleep, signal, timeout, default decision)."
    )
    wait_until: datetime | None = strawberry.field(
        description="When its sleep ends or its wait times out, while it waits."
    )
    decided_by: str | None = strawberry.field(description="Who approved or rejected it.")
    decision_note: str | None

    @strawberry.field
    def duration_ms(self) -> float | None:
        return duration_ms(self.started_at, self.completed_at)

    @strawberry.field(description="The task that runs (or ran) this step.")
    async def task(self, info: Info) -> Task | None:
        if self.task_id is None:
            return None
        row = await info.context.loaders.tasks.load(self.task_id)
        return Task.of(row) if row is not None else None


@strawberry.type
class Workflow(Forwards):
    id: uuid.UUID
    name: str
    description: str | None
    status: WorkflowStatus
    total_steps: int
    completed_steps: int
    progress: float
    current_step: str | None
    final_step_id: str | None
    config: JSON
    result: JSON | None
    error_message: str | None
    errors: list[str]
    webhook_url: str | None
    origin_instance: str
    origin_zone: str | None
    origin_tenant_id: str | None
    origin_reference: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    run_at: datetime | None = strawberry.field(
        description="Created to start later: when its first steps run."
    )

    @strawberry.field
    def duration_ms(self) -> float | None:
        return duration_ms(self.started_at, self.completed_at)

    @strawberry.field(description="Steps in topological order (ties by declaration order).")
    async def steps(self, info: Info) -> list[WorkflowStep]:
        rows = await info.context.loaders.steps.load(self.id)
        return [WorkflowStep.of(r) for r in rows]
