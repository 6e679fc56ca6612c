"""Task queries and mutations: thin resolvers that parse, call app.services.tasks, and shape."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from app.db.models import Task as TaskRow
from app.gql.context import Context, Info
from app.gql.errors import CaptureErrors, acted, error_of, json_object
from app.gql.forward import forward
from app.gql.pagination import Connection, Listed, OrderDirection, Paged, Slice, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.reads import or_null
from app.gql.selection import columns_for, node_fields
from app.gql.types import TASK_FIELD_COLUMNS, Task, TaskError, TaskErrorCode
from app.kernel.bounds import PRIORITY_MAX, PRIORITY_MIN
from app.kernel.errors import DomainError
from app.services.tasks import commands as tasks
from app.services.tasks import queries as task_queries
from app.services.tasks import replay
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from app.services.tasks.lifecycle import TaskStatus


@strawberry.enum
class TaskOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    STARTED_AT = "started_at"
    COMPLETED_AT = "completed_at"
    PRIORITY = "priority"
    STATUS = "status"
    TASK_TYPE = "task_type"
    PROGRESS = "progress"
    DURATION = "duration_ms"


@strawberry.input
class TaskOrder:
    field: TaskOrderField = TaskOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input
class TaskFilter:
    status: list[TaskStatus] | None = None
    task_type: list[str] | None = None
    queue: list[str] | None = None
    provider: list[str] | None = None
    origin_instance: str | None = None
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    id_prefix: str | None = None
    dead_lettered: bool | None = None

    def to_service(self) -> task_queries.TaskFilter:
        return forward(
            task_queries.TaskFilter,
            self,
            statuses=[s.value for s in self.status or []],
            task_types=self.task_type or [],
            queues=self.queue or [],
            providers=self.provider or [],
        )


# lean columns, one statement each: no transaction
TASKS = Listed("tasks", task_queries.TASKS, Task.of, single_statement=True)


@strawberry.type
class TaskQueries:
    @strawberry.field(permission_classes=[CanRead], description="One task, or null if unknown.")
    async def task(self, info: Info, id: uuid.UUID) -> Task | None:
        tenant = info.context.tenant_id
        return await or_null(
            info, lambda s: tasks.get_task(session=s, task_id=id, tenant_id=tenant), Task.of
        )

    @strawberry.field(permission_classes=[CanRead], extensions=[Paged(TaskFilter, TaskOrder)])
    async def tasks(self, info: Info, window: Slice) -> Connection[Task]:
        columns = columns_for(node_fields(info), TASK_FIELD_COLUMNS, always=("id",))
        scope = window.filter.to_service()
        tenant = info.context.tenant_id
        return await connection(info, window, TASKS, scope, tenant_id=tenant, columns=columns)


@strawberry.input
class SubmitTaskInput:
    operation: str | None = strawberry.field(
        default=None, description="e.g. chat_completion, generate_embedding, echo"
    )
    task_type: str | None = strawberry.field(default=None, description="e.g. llm, echo")
    queue: str | None = strawberry.field(
        default=None, description="Default: the task type's queue (llm and echo: llm)."
    )
    priority: int = strawberry.field(
        default=50, description=f"{PRIORITY_MIN}-{PRIORITY_MAX}; higher runs first."
    )
    input: JSON | None = None
    config: JSON | None = None
    metadata: JSON | None = None
    webhook_url: str | None = None
    origin_instance: str = "api"
    origin_zone: str | None = None
    origin_tenant_id: str | None = strawberry.field(
        default=None, description="Ignored for tenant-scoped callers: their own tenant is used."
    )
    origin_reference: str | None = None
    max_retries: int | None = strawberry.field(default=None, description="Default: settings.")
    run_at: datetime | None = strawberry.field(
        default=None,
        description="Run at this time (ISO 8601 with an offset); a past time runs now; at most "
        "OPSGRAPH_MAX_DELAY_SECONDS ahead.",
    )
    delay_seconds: float | None = strawberry.field(
        default=None, description="Run this many seconds from now (instead of runAt)."
    )
    result_ttl_seconds: int | None = None
    concurrency_key: str | None = strawberry.field(
        default=None,
        description="At most concurrencyLimit tasks of this key (within the tenant) run at once "
        "across the fleet; the others wait in the queue, holding no worker slot.",
    )
    concurrency_limit: int | None = strawberry.field(default=None, description="1-1000.")
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Submit at most once: the same key (per tenant, kept OPSGRAPH_IDEMPOTENCY_TTL) "
        "with the same request answers the task it made (`replayed`); with another request, "
        "a CONFLICT naming idempotencyKey.",
    )


@strawberry.input
class TaskIdInput:
    id: uuid.UUID


@strawberry.input
class RetryTaskInput:
    id: uuid.UUID
    input: JSON | None = strawberry.field(
        default=None,
        description="Replay with this input instead (checked as a submission's is); the one it "
        "replaces stays in the task's log.",
    )


@strawberry.type
class TaskPayload:
    task: Task | None
    errors: list[TaskError]


@strawberry.type
class SubmitTaskPayload:
    task: Task | None
    replayed: bool = strawberry.field(
        description="True when the idempotency key answered the task an earlier submission made."
    )
    errors: list[TaskError]


@strawberry.type
class BatchItemError:
    index: int = strawberry.field(description="The item's position in the input (-1: the batch)")
    field: str | None
    code: TaskErrorCode
    message: str


@strawberry.type
class SubmitTasksPayload:
    tasks: list[Task]
    errors: list[BatchItemError]
    submitted: int
    replayed: list[uuid.UUID] = strawberry.field(
        description="The tasks among `tasks` that their items' idempotency keys made before."
    )


def _spec(input: SubmitTaskInput, ctx: Context) -> task_specs.TaskSpec:
    return task_specs.TaskSpec(
        task_type=input.task_type,
        operation=input.operation,
        queue=input.queue,
        priority=input.priority,
        input=json_object(input.input, "input"),
        config=json_object(input.config, "config"),
        metadata=json_object(input.metadata, "metadata"),
        webhook_url=input.webhook_url,
        origin_instance=input.origin_instance,
        origin_zone=input.origin_zone,
        origin_tenant_id=ctx.tenant_for(input.origin_tenant_id),
        origin_reference=input.origin_reference,
        max_retries=input.max_retries,
        result_ttl_seconds=input.result_ttl_seconds,
        run_at=input.run_at,
        delay_seconds=input.delay_seconds,
        idempotency_key=input.idempotency_key,
        concurrency_key=input.concurrency_key,
        concurrency_limit=input.concurrency_limit,
    )


@strawberry.type
class TaskMutations:
    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def submit_task(self, info: Info, input: SubmitTaskInput) -> SubmitTaskPayload:
        ctx = info.context
        spec = _spec(input, ctx)
        defaults = ctx.state.settings.task_defaults
        if spec.idempotency_key is None:
            row: TaskRow = await ctx.state.submissions.submit(spec, defaults)
            return SubmitTaskPayload(task=Task.of(row), replayed=False, errors=[])
        # a keyed submission claims its key in a transaction of its own, not a group commit's
        async with ctx.writing() as session:
            done = await task_submissions.submit_task_once(
                session=session, spec=spec, defaults=defaults
            )
        return SubmitTaskPayload(task=Task.of(done.task), replayed=done.replayed, errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description=f"Up to {task_submissions.MAX_BATCH} tasks in one transaction, enqueued in "
        "one Redis pipeline. Every item is validated; with an invalid one nothing is stored unless "
        "`partial`, which stores the valid ones. `errors` name each item by its index.",
    )
    async def submit_tasks(
        self, info: Info, input: list[SubmitTaskInput], partial: bool = False
    ) -> SubmitTasksPayload:
        ctx = info.context
        specs: list[task_specs.TaskSpec] = []
        positions: list[int] = []
        errors: list[BatchItemError] = []
        for i, item in enumerate(input):
            try:
                specs.append(_spec(item, ctx))
                positions.append(i)
            except DomainError as exc:
                errors.append(error_of(BatchItemError, exc, index=i))
        if errors and not partial:
            # nothing is stored: say what is wrong with every item
            more = task_submissions.invalid_items(specs, ctx.state.settings.task_defaults)
            errors += [error_of(BatchItemError, e, index=positions[e.index]) for e in more]
            errors.sort(key=lambda e: e.index)
            return SubmitTasksPayload(tasks=[], errors=errors, submitted=0, replayed=[])
        rows: list[TaskRow] = []
        replayed: list[uuid.UUID] = []
        if specs:
            try:
                async with ctx.writing() as session:
                    done = await task_submissions.submit_tasks(
                        session=session,
                        specs=specs,
                        defaults=ctx.state.settings.task_defaults,
                        partial=partial,
                    )
                rows, refused, replayed = done.tasks, done.errors, done.replayed_ids
            except task_submissions.BatchRefused as exc:
                refused, rows = exc.errors, []
            except DomainError as exc:
                return SubmitTasksPayload(
                    tasks=[],
                    errors=[error_of(BatchItemError, exc, index=-1)],
                    submitted=0,
                    replayed=[],
                )
            errors += [error_of(BatchItemError, e, index=positions[e.index]) for e in refused]
        errors.sort(key=lambda e: e.index)
        return SubmitTasksPayload(
            tasks=[Task.of(r) for r in rows],
            errors=errors,
            submitted=len(rows) - len(replayed),
            replayed=replayed,
        )

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Cancel a QUEUED task now, or ask a RUNNING one to stop.",
        extensions=[CaptureErrors()],
    )
    async def cancel_task(self, info: Info, input: TaskIdInput) -> TaskPayload:
        return await acted(info, tasks.cancel_task, TaskPayload, Task.of, task_id=input.id)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Put a FAILED or CANCELLED task back in its queue.",
        extensions=[CaptureErrors()],
    )
    async def retry_task(self, info: Info, input: RetryTaskInput) -> TaskPayload:
        return await acted(
            info,
            replay.retry_task,
            TaskPayload,
            Task.of,
            task_id=input.id,
            input=json_object(input.input, "input") if input.input is not None else None,
            defaults=info.context.state.settings.task_defaults,
        )
