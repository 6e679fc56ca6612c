"""Seed 001's workflow monitoring (/api/v1/monitoring/workflows...) and workflow creation
(POST /api/v1/workflows, answering 201 with the WorkflowDetailResponse)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from app.db.models import Workflow, WorkflowStep
from app.edge.uow import read_only, unit_of_work
from app.kernel.bounds import MAX_RETRIES_MAX, PRIORITY_MAX, PRIORITY_MIN
from app.kernel.errors import InvalidInput
from app.kernel.timing import duration_ms
from app.rest import pages
from app.rest.deps import Operator, Reader, State
from app.rest.errors import field_loc, key_conflict
from app.rest.params import (
    REPLAYED_HEADER,
    IdempotencyKey,
    IsoDateTime,
    JsonInt,
    Page,
    PageSize,
    SortOrder,
)
from app.rest.refusals import Refusals, reading
from app.rest.shapes import shaped
from app.services.tasks.idempotency import KeyConflict
from app.services.workflows import definitions as workflow_definitions
from app.services.workflows import engine as workflows
from app.services.workflows import queries as workflow_queries

router = APIRouter(tags=["Workflows"])
NOT_FOUND = Refusals(message="Workflow not found", invalid_input=False)


class _WorkflowHead(BaseModel):
    """The fields every workflow answer opens with (seed 001's order)."""

    id: uuid.UUID
    name: str
    description: str | None = None
    status: str
    total_steps: int = 0
    completed_steps: int = 0
    progress: float = 0.0
    current_step: str | None = None
    final_step_id: str | None = None


class WorkflowListItem(_WorkflowHead):
    origin_instance: str
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    has_error: bool


class MonitoringWorkflowListResponse(BaseModel):
    items: list[WorkflowListItem]
    total: int
    page: int
    page_size: int
    pages: int


class WorkflowStepMonitor(BaseModel):
    id: uuid.UUID
    step_id: str
    task_type: str
    status: str
    task_id: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    input_mappings: list[dict[str, Any]] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    error_message: str | None = None
    retry_count: int = 0
    max_retries: int = 0
    result: Any | None = None


class WorkflowDetailResponse(_WorkflowHead):
    canvas_task_id: str | None = None
    origin_instance: str
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    origin_reference: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    error_message: str | None = None
    errors: list[str] = Field(default_factory=list)
    steps: list[WorkflowStepMonitor] = Field(default_factory=list)


class WorkflowAggregateStats(BaseModel):
    total_workflows: int
    by_status: dict[str, int] = Field(default_factory=dict)
    workflows_last_hour: int = 0
    workflows_last_24h: int = 0
    avg_steps_per_workflow: float = 0.0


class StepIn(BaseModel):
    step_id: str = Field(min_length=1, max_length=255)
    task_type: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="llm, echo or a type workers registered (GraphQL `taskTypes` lists them); "
        "TASK steps only.",
    )
    kind: workflow_definitions.StepKind = workflow_definitions.StepKind.TASK
    sleep_seconds: float | None = Field(None, ge=0, description="SLEEP: how long.")
    until: AwareDatetime | None = Field(None, description="SLEEP: until when.")
    signal: str | None = Field(None, max_length=255, description="SIGNAL: its name.")
    timeout_seconds: float | None = Field(None, gt=0, description="APPROVAL, SIGNAL: timeout.")
    default_decision: workflow_definitions.Decision | None = None
    operation: Literal["echo", "chat_completion", "generate_embedding"] | None = None
    queue: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    dependencies: list[str] = Field(default_factory=list)
    input_mappings: list[dict[str, Any]] = Field(default_factory=list)
    input: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    max_retries: JsonInt = Field(0, ge=0, le=MAX_RETRIES_MAX)


class WorkflowIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None
    origin_instance: str = Field("api", min_length=1, max_length=255)
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    origin_reference: str | None = None
    final_step_id: str | None = None
    priority: JsonInt = Field(50, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    run_at: AwareDatetime | None = Field(
        None, description="Start at this time: its first steps wait for it (beyond the seeds)."
    )
    delay_seconds: float | None = Field(
        None, ge=0, description="Start this many seconds from now (instead of run_at)."
    )
    steps: list[StepIn] = Field(min_length=1, max_length=workflow_definitions.MAX_STEPS)


def spec_of(body: WorkflowIn, principal: Any) -> workflow_definitions.WorkflowSpec:
    """A workflow creation's body as the service's spec, in the caller's tenant."""
    return workflow_definitions.WorkflowSpec(
        **body.model_dump(exclude={"origin_tenant_id", "steps"}),
        origin_tenant_id=principal.tenant_for(body.origin_tenant_id),
        steps=[workflow_definitions.StepSpec(**s.model_dump()) for s in body.steps],
    )


class WorkflowStatusParam(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class WorkflowSortBy(StrEnum):
    created_at = "created_at"
    updated_at = "updated_at"
    started_at = "started_at"
    completed_at = "completed_at"
    name = "name"
    status = "status"
    progress = "progress"
    total_steps = "total_steps"
    duration_ms = "duration_ms"


def list_item(wf: Workflow) -> WorkflowListItem:
    return shaped(
        WorkflowListItem,
        wf,
        duration_ms=duration_ms(wf.started_at, wf.completed_at),
        has_error=bool(wf.error_message or wf.errors),
    )


def step_monitor(step: WorkflowStep) -> WorkflowStepMonitor:
    return shaped(
        WorkflowStepMonitor,
        step,
        task_id=str(step.task_id) if step.task_id else None,
        duration_ms=duration_ms(step.started_at, step.completed_at),
    )


def detail(wf: Workflow, steps: list[WorkflowStep]) -> WorkflowDetailResponse:
    return shaped(
        WorkflowDetailResponse,
        wf,
        canvas_task_id=None,
        duration_ms=duration_ms(wf.started_at, wf.completed_at),
        steps=[step_monitor(s) for s in steps],
    )


@router.post(
    "/api/v1/workflows",
    status_code=201,
    response_model=WorkflowDetailResponse,
    summary="Create Workflow",
)
async def create_workflow(
    body: WorkflowIn,
    state: State,
    principal: Operator,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WorkflowDetailResponse | JSONResponse:
    spec = spec_of(body, principal)
    spec.idempotency_key = idempotency_key
    try:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            created = await workflows.create_workflow_once(
                session=session,
                spec=spec,
                defaults=state.settings.task_defaults,
            )
            wf = created.workflow
            steps = (await workflows.steps_of(session=session, workflow_ids=[wf.id]))[wf.id]
    except KeyConflict as exc:
        return key_conflict(exc.message)
    except InvalidInput as exc:
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": field_loc(exc.field),
                        "msg": exc.message,
                        "type": "value_error.workflow",
                    }
                ]
            },
            status_code=422,
        )
    if created.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return detail(wf, steps)


@router.get("/api/v1/monitoring/workflows", summary="List Monitored Workflows")
async def list_monitored_workflows(
    state: State,
    principal: Reader,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
    origin_instance: Annotated[str | None, Query(max_length=255)] = None,
    origin_tenant_id: Annotated[str | None, Query(max_length=255)] = None,
    origin_zone: Annotated[str | None, Query(max_length=255)] = None,
    page: Page = 1,
    page_size: PageSize = 50,
    search: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="Search by workflow name or ID prefix"),
    ] = None,
    sort_by: WorkflowSortBy = WorkflowSortBy.created_at,
    sort_order: SortOrder = SortOrder.desc,
    status: WorkflowStatusParam | None = None,
) -> MonitoringWorkflowListResponse:
    flt = workflow_queries.WorkflowFilter(
        statuses=[status.value] if status else [],
        origin_instance=origin_instance,
        origin_zone=origin_zone,
        origin_tenant_id=origin_tenant_id,
        created_after=created_after,
        created_before=created_before,
        search=search,
    )
    found, figures = await pages.numbered(
        state, workflow_queries.WORKFLOWS, flt, page, page_size, sort_by, sort_order, principal
    )
    return MonitoringWorkflowListResponse(items=[list_item(w) for w in found], **figures)


@router.get("/api/v1/monitoring/workflows/stats", summary="Get Workflow Monitoring Stats")
async def get_workflow_stats(
    state: State,
    principal: Reader,
    origin_instance: Annotated[str | None, Query(max_length=255)] = None,
    origin_zone: Annotated[str | None, Query(max_length=255)] = None,
) -> WorkflowAggregateStats:
    async with read_only(state.sessionmaker) as session:
        s = await workflow_queries.workflow_stats(
            session=session,
            tenant_id=principal.tenant_id,
            origin_instance=origin_instance,
            origin_zone=origin_zone,
        )
    return WorkflowAggregateStats(**vars(s))


@router.get("/api/v1/monitoring/workflows/{workflow_id}", summary="Get Monitored Workflow")
async def get_monitored_workflow(
    workflow_id: uuid.UUID, state: State, principal: Reader
) -> WorkflowDetailResponse:
    async with reading(state, NOT_FOUND) as session:
        wf = await workflows.get_workflow(
            session=session, workflow_id=workflow_id, tenant_id=principal.tenant_id
        )
        steps = (await workflows.steps_of(session=session, workflow_ids=[wf.id]))[wf.id]
    return detail(wf, steps)
