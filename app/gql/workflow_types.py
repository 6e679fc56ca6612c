"""GraphQL object types of workflows and their steps (each step resolves its task through a
DataLoader)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.db.models import Workflow as WorkflowRow
from app.db.models import WorkflowStep as StepRow
from app.gql.context import Info
from app.gql.types import Task
from app.services.timing import duration_ms


@strawberry.enum
class WorkflowStatus(Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class StepStatus(Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class WorkflowErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    # a step naming a queue of opsgraph's own (the camera pipeline's)
    RESERVED_QUEUE = "RESERVED_QUEUE"


@strawberry.type
class WorkflowError:
    field: str | None
    code: WorkflowErrorCode
    message: str


@strawberry.type
class WorkflowStep:
    row: strawberry.Private[StepRow]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def step_id(self) -> str:
        return self.row.step_id

    @strawberry.field
    def task_type(self) -> str:
        return self.row.task_type

    @strawberry.field
    def status(self) -> StepStatus:
        return StepStatus(self.row.status)

    @strawberry.field
    def dependencies(self) -> list[str]:
        return list(self.row.dependencies)

    @strawberry.field
    def input_mappings(self) -> list[JSON]:
        return [cast(JSON, m) for m in self.row.input_mappings]

    @strawberry.field
    def config(self) -> JSON:
        return cast(JSON, self.row.config)

    @strawberry.field
    def result(self) -> JSON | None:
        return cast(JSON, self.row.result)

    @strawberry.field
    def error_message(self) -> str | None:
        return self.row.error_message

    @strawberry.field
    def retry_count(self) -> int:
        return self.row.retry_count

    @strawberry.field
    def max_retries(self) -> int:
        return self.row.max_retries

    @strawberry.field
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @strawberry.field
    def completed_at(self) -> datetime | None:
        return self.row.completed_at

    @strawberry.field
    def duration_ms(self) -> float | None:
        return duration_ms(self.row.started_at, self.row.completed_at)

    @strawberry.field(description="The task that runs (or ran) this step.")
    async def task(self, info: Info) -> Task | None:
        if self.row.task_id is None:
            return None
        row = await info.context.loaders.tasks.load(self.row.task_id)
        return Task.of(row) if row is not None else None


@strawberry.type
class Workflow:
    row: strawberry.Private[WorkflowRow]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def description(self) -> str | None:
        return self.row.description

    @strawberry.field
    def status(self) -> WorkflowStatus:
        return WorkflowStatus(self.row.status)

    @strawberry.field
    def total_steps(self) -> int:
        return self.row.total_steps

    @strawberry.field
    def completed_steps(self) -> int:
        return self.row.completed_steps

    @strawberry.field
    def progress(self) -> float:
        return self.row.progress

    @strawberry.field
    def current_step(self) -> str | None:
        return self.row.current_step

    @strawberry.field
    def final_step_id(self) -> str | None:
        return self.row.final_step_id

    @strawberry.field
    def config(self) -> JSON:
        return cast(JSON, self.row.config)

    @strawberry.field
    def result(self) -> JSON | None:
        return cast(JSON, self.row.result)

    @strawberry.field
    def error_message(self) -> str | None:
        return self.row.error_message

    @strawberry.field
    def errors(self) -> list[str]:
        return list(self.row.errors)

    @strawberry.field
    def webhook_url(self) -> str | None:
        return self.row.webhook_url

    @strawberry.field
    def origin_instance(self) -> str:
        return self.row.origin_instance

    @strawberry.field
    def origin_zone(self) -> str | None:
        return self.row.origin_zone

    @strawberry.field
    def origin_tenant_id(self) -> str | None:
        return self.row.origin_tenant_id

    @strawberry.field
    def origin_reference(self) -> str | None:
        return self.row.origin_reference

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at

    @strawberry.field
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @strawberry.field
    def completed_at(self) -> datetime | None:
        return self.row.completed_at

    @strawberry.field
    def duration_ms(self) -> float | None:
        return duration_ms(self.row.started_at, self.row.completed_at)

    @strawberry.field(description="Steps in topological order (ties by declaration order).")
    async def steps(self, info: Info) -> list[WorkflowStep]:
        rows = await info.context.loaders.steps.load(self.row.id)
        return [WorkflowStep(row=r) for r in rows]
