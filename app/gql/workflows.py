"""Workflows in GraphQL: queries, the create/pause/resume/cancel/retry mutations, and a live
subscription per workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Awaitable
from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Context, Info
from app.gql.errors import CaptureErrors, acted, json_object
from app.gql.forward import forward
from app.gql.pagination import Connection, Listed, OrderDirection, Paged, Slice, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.reads import or_not_found, or_null
from app.gql.types import CountByKey, counts
from app.gql.workflow_types import Workflow, WorkflowError
from app.platform.events import Event
from app.services.workflows import definitions as workflow_definitions
from app.services.workflows import engine as workflows
from app.services.workflows import queries as workflow_queries
from app.services.workflows import retry as workflow_retry
from app.services.workflows import waiting
from app.services.workflows.definitions import Decision, StepKind, WorkflowStatus


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
        return forward(
            workflow_queries.WorkflowFilter, self, statuses=[s.value for s in self.status or []]
        )


@strawberry.type
class WorkflowStats:
    total_workflows: int
    by_status: list[CountByKey]
    workflows_last_hour: int
    workflows_last_24h: int
    avg_steps_per_workflow: float


WORKFLOWS = Listed("workflows", workflow_queries.WORKFLOWS, Workflow.of)


@strawberry.type
class WorkflowQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def workflow(self, info: Info, id: uuid.UUID) -> Workflow | None:
        tenant = info.context.tenant_id
        return await or_null(
            info,
            lambda s: workflows.get_workflow(session=s, workflow_id=id, tenant_id=tenant),
            Workflow.of,
        )

    @strawberry.field(
        permission_classes=[CanRead], extensions=[Paged(WorkflowFilter, WorkflowOrder)]
    )
    async def workflows(self, info: Info, window: Slice) -> Connection[Workflow]:
        scope = window.filter.to_service()
        return await connection(info, window, WORKFLOWS, scope, tenant_id=info.context.tenant_id)

    @strawberry.field(permission_classes=[CanRead])
    async def workflow_stats(
        self, info: Info, origin_instance: str | None = None, origin_zone: str | None = None
    ) -> WorkflowStats:
        async with info.context.reading() as session:
            s = await workflow_queries.workflow_stats(
                session=session,
                tenant_id=info.context.tenant_id,
                origin_instance=origin_instance,
                origin_zone=origin_zone,
            )
        return forward(WorkflowStats, s, by_status=counts(s.by_status))


@strawberry.input
class WorkflowStepInput:
    step_id: str
    task_type: str | None = strawberry.field(
        default=None, description="What a TASK step runs (required for TASK steps only)."
    )
    kind: StepKind = StepKind.TASK
    sleep_seconds: float | None = strawberry.field(
        default=None, description="SLEEP: how long (or give `until`)."
    )
    until: datetime | None = strawberry.field(default=None, description="SLEEP: until when.")
    signal: str | None = strawberry.field(
        default=None, description="SIGNAL: the name signalWorkflow sends."
    )
    timeout_seconds: float | None = strawberry.field(
        default=None,
        description="APPROVAL or SIGNAL: fail the step (or take defaultDecision) after this.",
    )
    default_decision: Decision | None = strawberry.field(
        default=None, description="APPROVAL: what its timeout decides (none: the step fails)."
    )
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
    run_at: datetime | None = strawberry.field(
        default=None, description="Start at this time: its first steps wait for it."
    )
    delay_seconds: float | None = strawberry.field(
        default=None, description="Start this many seconds from now (instead of runAt)."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Create at most once: the same key (per tenant, kept "
        "OPSGRAPH_IDEMPOTENCY_TTL) with the same request answers the workflow it made "
        "(`replayed`); with another request, a CONFLICT naming idempotencyKey.",
    )


@strawberry.input
class WorkflowIdInput:
    id: uuid.UUID


@strawberry.input(description="A new input for a step that runs again.")
class RetryStepInput:
    step_id: str
    input: JSON


@strawberry.input
class RetryWorkflowInput:
    id: uuid.UUID
    steps: list[RetryStepInput] | None = strawberry.field(
        default=None,
        description="New inputs for steps that run again (the failed or cancelled ones and "
        "those after them), checked as a submission's are; each step's old input stays in its "
        "old task.",
    )


@strawberry.type
class WorkflowPayload:
    workflow: Workflow | None
    errors: list[WorkflowError]


@strawberry.type
class CreateWorkflowPayload:
    workflow: Workflow | None
    replayed: bool = strawberry.field(
        description="True when the idempotency key answered the workflow an earlier creation made."
    )
    errors: list[WorkflowError]


def _spec(input: CreateWorkflowInput, ctx: Context) -> workflow_definitions.WorkflowSpec:
    return forward(
        workflow_definitions.WorkflowSpec,
        input,
        config=json_object(input.config, "config"),
        origin_tenant_id=ctx.tenant_for(input.origin_tenant_id),
        steps=[
            forward(
                workflow_definitions.StepSpec,
                s,
                dependencies=list(s.dependencies or []),
                input_mappings=[cast(dict[str, object], m) for m in s.input_mappings or []],
                input=json_object(s.input, f"steps[{i}].input"),
                config=json_object(s.config, f"steps[{i}].config"),
            )
            for i, s in enumerate(input.steps)
        ],
    )


@strawberry.type
class WorkflowMutations:
    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def create_workflow(
        self, info: Info, input: CreateWorkflowInput
    ) -> CreateWorkflowPayload:
        ctx = info.context
        spec = _spec(input, ctx)
        async with ctx.writing() as session:
            done = await workflows.create_workflow_once(
                session=session, spec=spec, defaults=ctx.state.settings.task_defaults
            )
        return CreateWorkflowPayload(
            workflow=Workflow.of(done.workflow), replayed=done.replayed, errors=[]
        )

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Stop starting new steps; running ones finish.",
        extensions=[CaptureErrors()],
    )
    async def pause_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.pause_workflow, input)

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def resume_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.resume_workflow, input)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Cancel running and pending steps.",
        extensions=[CaptureErrors()],
    )
    async def cancel_workflow(self, info: Info, input: WorkflowIdInput) -> WorkflowPayload:
        return await _act(info, workflows.cancel_workflow, input)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Rerun failed or cancelled steps and what depends on them.",
        extensions=[CaptureErrors()],
    )
    async def retry_workflow(self, info: Info, input: RetryWorkflowInput) -> WorkflowPayload:
        return await acted(
            info,
            workflow_retry.retry_workflow,
            WorkflowPayload,
            Workflow.of,
            workflow_id=input.id,
            inputs=[
                workflow_retry.StepInput(s.step_id, json_object(s.input, f"steps[{i}].input"))
                for i, s in enumerate(input.steps or [])
            ],
            defaults=info.context.state.settings.task_defaults,
        )

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Approve a waiting APPROVAL step: it completes and the next steps run.",
        extensions=[CaptureErrors()],
    )
    async def approve_step(
        self, info: Info, workflow_id: uuid.UUID, step_id: str, note: str | None = None
    ) -> WorkflowPayload:
        return await _decide(info, workflow_id, step_id, note, approve=True)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Reject a waiting APPROVAL step: it fails the workflow with the note.",
        extensions=[CaptureErrors()],
    )
    async def reject_step(
        self, info: Info, workflow_id: uuid.UUID, step_id: str, note: str | None = None
    ) -> WorkflowPayload:
        return await _decide(info, workflow_id, step_id, note, approve=False)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Complete the steps waiting for this signal, the payload as their result.",
        extensions=[CaptureErrors()],
    )
    async def signal_workflow(
        self, info: Info, workflow_id: uuid.UUID, name: str, payload: JSON | None = None
    ) -> WorkflowPayload:
        return await acted(
            info,
            waiting.signal_workflow,
            WorkflowPayload,
            Workflow.of,
            workflow_id=workflow_id,
            name=name,
            payload=payload,
        )


def _decide(
    info: Info, workflow_id: uuid.UUID, step_id: str, note: str | None, *, approve: bool
) -> Awaitable[WorkflowPayload]:
    return acted(
        info,
        waiting.decide,
        WorkflowPayload,
        Workflow.of,
        workflow_id=workflow_id,
        step_id=step_id,
        note=note,
        approve=approve,
        actor=info.context.actor,
    )


def _act(
    info: Info, action: workflows.Action, input: WorkflowIdInput
) -> Awaitable[WorkflowPayload]:
    return acted(info, action, WorkflowPayload, Workflow.of, workflow_id=input.id)


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
                row = await or_not_found(
                    info,
                    lambda s: workflows.get_workflow(
                        session=s, workflow_id=id, tenant_id=ctx.tenant_id
                    ),
                )
                # Fresh loaders per snapshot: steps must not come from an earlier cache.
                ctx.loaders = type(ctx.loaders)(ctx.state.sessionmaker)
                yield Workflow.of(row)
                await sub.get()
                sub.drain()  # one snapshot covers every change that arrived meanwhile
