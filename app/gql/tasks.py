"""Task queries and mutations: thin resolvers that parse, call app.services.tasks, and shape."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from app.db.models import Task as TaskRow
from app.gql.context import Info
from app.gql.pagination import Connection, OrderDirection, Slice, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.selection import columns_for, node_fields
from app.gql.types import TASK_FIELD_COLUMNS, Task, TaskError, TaskErrorCode, TaskStatus
from app.services import task_queries, task_specs, task_submissions, tasks
from app.services.errors import DomainError, InvalidInput
from app.uow import read_only, unit_of_work


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
        return task_queries.TaskFilter(
            statuses=[s.value for s in self.status or []],
            task_types=self.task_type or [],
            queues=self.queue or [],
            providers=self.provider or [],
            origin_instance=self.origin_instance,
            origin_zone=self.origin_zone,
            origin_tenant_id=self.origin_tenant_id,
            created_after=self.created_after,
            created_before=self.created_before,
            id_prefix=self.id_prefix,
            dead_lettered=self.dead_lettered,
        )


@strawberry.type
class TaskQueries:
    @strawberry.field(permission_classes=[CanRead], description="One task, or null if unknown.")
    async def task(self, info: Info, id: uuid.UUID) -> Task | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                row = await tasks.get_task(
                    session=session, task_id=id, tenant_id=info.context.tenant_id
                )
            except DomainError:
                return None
        return Task.of(row)

    @strawberry.field(permission_classes=[CanRead])
    async def tasks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: TaskFilter | None = None,
        order_by: TaskOrder | None = None,
    ) -> Connection[Task]:
        order = order_by or TaskOrder()
        flt = (filter or TaskFilter()).to_service()
        tenant = info.context.tenant_id
        columns = columns_for(node_fields(info), TASK_FIELD_COLUMNS, always=("id",))
        return await connection(
            info,
            Slice(first, after, last, before),
            name="tasks",
            order_by=order.field.value,
            descending=order.direction == OrderDirection.DESC,
            scope=flt,
            rows=lambda s, page: task_queries.list_tasks(
                session=s, filter=flt, page=page, tenant_id=tenant, columns=columns
            ),
            count=lambda s: task_queries.count_tasks(session=s, filter=flt, tenant_id=tenant),
            node=lambda row: Task.of(row),
            single_statement=True,  # lean columns, one statement each: no transaction
        )


@strawberry.input
class SubmitTaskInput:
    operation: str | None = strawberry.field(
        default=None, description="e.g. chat_completion, generate_embedding, echo"
    )
    task_type: str | None = strawberry.field(default=None, description="e.g. llm, echo")
    queue: str = "llm"
    priority: int = strawberry.field(default=50, description="0-100; higher runs first.")
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
    result_ttl_seconds: int | None = None


@strawberry.input
class TaskIdInput:
    id: uuid.UUID


@strawberry.type
class TaskPayload:
    task: Task | None
    errors: list[TaskError]


def _errors(exc: DomainError) -> TaskPayload:
    return TaskPayload(
        task=None,
        errors=[TaskError(field=exc.field, code=TaskErrorCode(exc.code), message=exc.message)],
    )


def _json_object(value: object, field: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", field=field)
    return value


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


def _item_error(index: int, field: str | None, code: str, message: str) -> BatchItemError:
    known = {c.value for c in TaskErrorCode}
    return BatchItemError(
        index=index,
        field=field,
        code=TaskErrorCode(code if code in known else "INVALID"),
        message=message,
    )


def _spec(input: SubmitTaskInput, tenant_id: str | None) -> task_specs.TaskSpec:
    return task_specs.TaskSpec(
        task_type=input.task_type,
        operation=input.operation,
        queue=input.queue,
        priority=input.priority,
        input=_json_object(input.input, "input"),
        config=_json_object(input.config, "config"),
        metadata=_json_object(input.metadata, "metadata"),
        webhook_url=input.webhook_url,
        origin_instance=input.origin_instance,
        origin_zone=input.origin_zone,
        origin_tenant_id=tenant_id or input.origin_tenant_id,
        origin_reference=input.origin_reference,
        max_retries=input.max_retries,
        result_ttl_seconds=input.result_ttl_seconds,
    )


@strawberry.type
class TaskMutations:
    @strawberry.mutation(permission_classes=[CanOperate])
    async def submit_task(self, info: Info, input: SubmitTaskInput) -> TaskPayload:
        ctx = info.context
        try:
            spec = _spec(input, ctx.tenant_id)
            row: TaskRow = await ctx.state.submissions.submit(
                spec, ctx.state.settings.task_defaults
            )
        except DomainError as exc:
            return _errors(exc)
        return TaskPayload(task=Task.of(row), errors=[])

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
                specs.append(_spec(item, ctx.tenant_id))
                positions.append(i)
            except DomainError as exc:
                errors.append(_item_error(i, exc.field, exc.code, exc.message))
        if errors and not partial:
            # nothing is stored: say what is wrong with every item
            more = task_submissions.invalid_items(specs, ctx.state.settings.task_defaults)
            errors += [_item_error(positions[e.index], e.field, e.code, e.message) for e in more]
            errors.sort(key=lambda e: e.index)
            return SubmitTasksPayload(tasks=[], errors=errors, submitted=0)
        rows: list[TaskRow] = []
        if specs:
            try:
                async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                    rows, refused = await task_submissions.submit_tasks(
                        session=session,
                        specs=specs,
                        defaults=ctx.state.settings.task_defaults,
                        partial=partial,
                    )
            except task_submissions.BatchRefused as exc:
                refused, rows = exc.errors, []
            except DomainError as exc:
                return SubmitTasksPayload(
                    tasks=[],
                    errors=[_item_error(-1, exc.field, exc.code, exc.message)],
                    submitted=0,
                )
            errors += [_item_error(positions[e.index], e.field, e.code, e.message) for e in refused]
        errors.sort(key=lambda e: e.index)
        return SubmitTasksPayload(
            tasks=[Task.of(r) for r in rows], errors=errors, submitted=len(rows)
        )

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Cancel a QUEUED task now, or ask a RUNNING one to stop.",
    )
    async def cancel_task(self, info: Info, input: TaskIdInput) -> TaskPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await tasks.cancel_task(
                    session=session, task_id=input.id, tenant_id=ctx.tenant_id
                )
        except DomainError as exc:
            return _errors(exc)
        return TaskPayload(task=Task.of(row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Put a FAILED or CANCELLED task back in its queue.",
    )
    async def retry_task(self, info: Info, input: TaskIdInput) -> TaskPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await tasks.retry_task(
                    session=session, task_id=input.id, tenant_id=ctx.tenant_id
                )
        except DomainError as exc:
            return _errors(exc)
        return TaskPayload(task=Task.of(row), errors=[])
