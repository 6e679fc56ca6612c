"""Workflows in GraphQL: queries, the create/pause/resume/cancel/retry mutations, and a live
subscription per workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from app.events import Event
from app.gql.context import Info
from app.gql.pagination import Connection, OrderDirection, Slice, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.types import CountByKey, counts
from app.gql.workflow_types import (
    Workflow,
    WorkflowError,
    WorkflowErrorCode,
    WorkflowStatus,
)
from app.services import workflow_definitions, workflow_queries, workflows
from app.services.errors import DomainError, InvalidInput, NotFound
from app.uow import read_only, unit_of_work


@strawberry.enum
class WorkflowOrderField(Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    STARTED_AT = "started_at"
    COMPLETED_AT = "completed_at"
    NAME = "name"
    STATUS = "status"
    PROGRESS = "progress"
    TOTAL_STEPS = "total_steps"
    DURATION = "duration_ms"


@strawberry.input
class WorkflowOrder:
    field: WorkflowOrderField = WorkflowOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input
class WorkflowFilter:
    status: list[WorkflowStatus] | None = None
    origin_instance: str | None = None
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = strawberry.field(default=None, description="Name or id prefix.")

    def to_service(self) -> workflow_queries.WorkflowFilter:
        return workflow_queries.WorkflowFilter(
            statuses=[s.value for s in self.status or []],
            origin_instance=self.origin_instance,
            origin_zone=self.origin_zone,
            origin_tenant_id=self.origin_tenant_id,
            created_after=self.created_after,
            created_before=self.created_before,
            search=self.search,
        )


@strawberry.type
class WorkflowStats:
    total_workflows: int
    by_status: list[CountByKey]
    workflows_last_hour: int
    workflows_last_24h: int
    avg_steps_per_workflow: float


@strawberry.type
class WorkflowQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def workflow(self, info: Info, id: uuid.UUID) -> Workflow | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                row = await workflows.get_workflow(
                    session=session, workflow_id=id, tenant_id=info.context.tenant_id
                )
            except NotFound:
                return None
        return Workflow(row=row)

    @strawberry.field(permission_classes=[CanRead])
    async def workflows(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: WorkflowFilter | None = None,
        order_by: WorkflowOrder | None = None,
    ) -> Connection[Workflow]:
        order = order_by or WorkflowOrder()
        flt = (filter or WorkflowFilter()).to_service()
        tenant = info.context.tenant_id
        return await connection(
            info,
            Slice(first, after, last, before),
            name="workflows",
            order_by=order.field.value,
            descending=order.direction == OrderDirection.DESC,
            scope=flt,
            rows=lambda s, page: workflow_queries.list_workflows(
                session=s, filter=flt, page=page, tenant_id=tenant
            ),
            count=lambda s: workflow_queries.count_workflows(
                session=s, filter=flt, tenant_id=tenant
            ),
            node=lambda row: Workflow(row=row),
        )

    @strawberry.field(permission_classes=[CanRead])
    async def workflow_stats(
        self, info: Info, origin_instance: str | None = None, origin_zone: str | None = None
    ) -> WorkflowStats:
        async with read_only(info.context.state.sessionmaker) as session:
            s = await workflow_queries.workflow_stats(
                session=session,
                tenant_id=info.context.tenant_id,
                origin_instance=origin_instance,
                origin_zone=origin_zone,
            )
        return WorkflowStats(
            total_workflows=s.total_workflows,
            by_status=counts(s.by_status),
            workflows_last_hour=s.workflows_last_hour,
            workflows_last_24h=s.workflows_last_24h,
            avg_steps_per_workflow=s.avg_steps_per_workflow,
        )


@strawberry.input
class WorkflowStepInput:
    step_id: str
    task_type: str
    operation: str | None = None
    queue: str | None = None
    dependencies: list[str] | None = None
    input_mappings: list[JSON] | None = strawberry.field(
        default=None, description='[{"from_step": "a", "path": "value", "to": "x"}]'
    )
    input: JSON | None = None
    config: JSON | None = None
    max_retries: int = 0


@strawberry.input
class CreateWorkflowInput:
    name: str
    steps: list[WorkflowStepInput]
    description: str | None = None
    config: JSON | None = None
    webhook_url: str | None = None
    origin_instance: str = "api"
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    origin_reference: str | None = None
    final_step_id: str | None = None
    priority: int = 50


@strawberry.input
class WorkflowIdInput:
    id: uuid.UUID


@strawberry.type
class WorkflowPayload:
    workflow: Workflow | None
    errors: list[WorkflowError]


def _object(value: object, field: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", field=field)
    return value


def _spec(input: CreateWorkflowInput, tenant_id: str | None) -> workflow_definitions.WorkflowSpec:
    return workflow_definitions.WorkflowSpec(
        name=input.name,
        description=input.description,
        config=_object(input.config, "config"),
        webhook_url=input.webhook_url,
        origin_instance=input.origin_instance,
        origin_zone=input.origin_zone,
        origin_tenant_id=tenant_id or input.origin_tenant_id,
        origin_reference=input.origin_reference,
        final_step_id=input.final_step_id,
        priority=input.priority,
        steps=[
            workflow_definitions.StepSpec(
                step_id=s.step_id,
                task_type=s.task_type,
                operation=s.operation,
                queue=s.queue,
                dependencies=list(s.dependencies or []),
                input_mappings=[cast(dict[str, object], m) for m in s.input_mappings or []],
                input=_object(s.input, f"steps[{i}].input"),
                config=_object(s.config, f"steps[{i}].config"),
                max_retries=s.max_retries,
            )
            for i, s in enumerate(input.steps)
        ],
    )


def _failure(exc: DomainError) -> WorkflowPayload:
    return WorkflowPayload(
        workflow=None,
        errors=[
            WorkflowError(field=exc.field, code=WorkflowErrorCode(exc.code), message=exc.message)
        ],
    )


@strawberry.type
class WorkflowMutations:
    @strawberry.mutation(permission_classes=[CanOperate])
    async def create_workflow(self, info: Info, input: CreateWorkflowInput) -> WorkflowPayload:
        ctx = info.context
        try:
            spec = _spec(input, ctx.tenant_id)
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await workflows.create_workflow(
                    session=session,
                    spec=spec,
                    defaults=ctx.state.settings.task_defaults,
                )
        except DomainError as exc:
            return _failure(exc)
        return WorkflowPayload(workflow=Workflow(row=row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate], description="Stop starting new steps; running ones finish."
    )
    async def pause_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.pause_workflow, input.id)

    @strawberry.mutation(permission_classes=[CanOperate])
    async def resume_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.resume_workflow, input.id)

    @strawberry.mutation(
        permission_classes=[CanOperate], description="Cancel running and pending steps."
    )
    async def cancel_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.cancel_workflow, input.id)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Rerun failed or cancelled steps and what depends on them.",
    )
    async def retry_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.retry_workflow, input.id)


async def _act(info: Info, action: workflows.Action, workflow_id: uuid.UUID) -> WorkflowPayload:
    ctx = info.context
    try:
        async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
            row = await action(session=session, workflow_id=workflow_id, tenant_id=ctx.tenant_id)
    except DomainError as exc:
        return _failure(exc)
    return WorkflowPayload(workflow=Workflow(row=row), errors=[])


@strawberry.type
class WorkflowSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="The workflow now, then after each change of it or its steps.",
    )
    async def workflow_updated(self, info: Info, id: uuid.UUID) -> AsyncGenerator[Workflow, None]:
        ctx = info.context
        key = str(id)

        def relevant(e: Event) -> bool:
            return (e.kind == "workflow" and e.key == key) or (
                e.kind == "task" and e.data.get("workflow_id") == key
            )

        async with ctx.state.broker.subscribe(relevant) as sub:
            while True:
                async with read_only(ctx.state.sessionmaker) as session:
                    try:
                        row = await workflows.get_workflow(
                            session=session, workflow_id=id, tenant_id=ctx.tenant_id
                        )
                    except NotFound as exc:
                        raise GraphQLError(exc.message, extensions={"code": "NOT_FOUND"}) from exc
                # Fresh loaders per snapshot: steps must not come from an earlier cache.
                ctx.loaders = type(ctx.loaders)(ctx.state.sessionmaker)
                yield Workflow(row=row)
                await sub.get()
                sub.drain()  # one snapshot covers every change that arrived meanwhile
