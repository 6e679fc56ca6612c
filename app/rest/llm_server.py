"""Seed 003 (/api/v1): create a task from a prompt and answer with its result when it finishes
within a short wait; server metrics."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StrictInt, StringConstraints

from app.edge.uow import read_only, unit_of_work
from app.kernel.bounds import MAX_RETRIES_MAX, PRIORITY_MAX, PRIORITY_MIN
from app.platform.events import Event
from app.rest.deps import Operator, Reader, State
from app.rest.params import IdempotencyKey
from app.rest.shapes import shaped
from app.rest.statuses import in_words
from app.services.fleet import stats
from app.services.tasks import commands as tasks
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from app.services.tasks.idempotency import KeyConflict
from app.services.tasks.lifecycle import FINISHED

router = APIRouter(prefix="/api/v1", tags=["LLM server"])

STATUS_003 = in_words("Processing", "Processing", "Completed", "Failed", "Failed")


class CreateTaskRequest(BaseModel):
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    profile: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "General"
    role: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "Chat-Agent"


class TaskResponse(BaseModel):
    task_id: str | None = Field(description="Unique identifier for the task.")
    status: str = Field(description="Processing, Completed or Failed.")
    result: str | None = None
    error: str | None = None


class MetricsResponse(BaseModel):
    server_status: str
    llm_status: dict[str, str]
    tokens_per_second: float | None = None
    average_response_time: float | None = None
    total_requests: int
    active_tasks: int
    queue_length: int
    success_rate: float | None = None
    api_costs: float | None = None


def _response(
    snapshot_status: str, task_id: str, result: object, errors: list[str]
) -> TaskResponse:
    content = result.get("content") if isinstance(result, dict) else None
    error = None
    if snapshot_status == "FAILED":
        error = errors[-1] if errors else "task failed"
    elif snapshot_status == "CANCELLED":
        error = "task was cancelled"
    return TaskResponse(
        task_id=task_id,
        status=STATUS_003[snapshot_status],
        result=str(content) if content is not None and snapshot_status == "COMPLETED" else None,
        error=error,
    )


@router.post("/tasks", response_model=TaskResponse, summary="Create Task")
async def create_task(body: CreateTaskRequest, state: State, principal: Operator) -> TaskResponse:
    spec = task_specs.TaskSpec(
        task_type="llm",
        operation="chat_completion",
        queue="llm",
        input={
            "messages": [
                {"role": "system", "content": f"You are a {body.role} ({body.profile} profile)."},
                {"role": "user", "content": body.prompt},
            ]
        },
        metadata={"profile": body.profile, "role": body.role, "api": "003"},
        origin_instance="llm-server",
        origin_tenant_id=principal.tenant_id,
    )
    holder: dict[str, str] = {}  # the id exists only once submitted, before any event can come

    def finished(e: Event) -> bool:
        return e.kind == "task" and e.key == holder.get("id") and e.data["status"] in FINISHED

    # Subscribe before the task exists so its completion cannot slip past us.
    async with state.broker.subscribe(finished, buffer=4) as sub:
        task = task_submissions.new_task(spec, state.settings.task_defaults)
        holder["id"] = str(task.id)
        await state.submissions.store(task)
        try:
            async with asyncio.timeout(state.settings.sync_wait_seconds):
                event = await sub.get()
        except TimeoutError:
            # The event may have been missed (e.g. a Redis hiccup): the row is the truth.
            async with read_only(state.sessionmaker) as session:
                row = await tasks.get_task(session=session, task_id=task.id)
            return _response(row.status, str(row.id), row.result, row.errors)
    data = event.data
    return _response(data["status"], data["id"], data.get("result"), data.get("errors") or [])


@router.get("/metrics", response_model=MetricsResponse, summary="Get Server Metrics")
async def get_metrics(state: State, principal: Reader) -> MetricsResponse:
    async with read_only(state.sessionmaker) as session:
        m = await stats.server_metrics(session=session, tenant_id=principal.tenant_id)
    model = stats.chat_model(state.settings.llm_provider_name, state.settings.llm_chat_model)
    return shaped(MetricsResponse, m, server_status="online", llm_status={model: "online"})


# --- bulk submission (beyond the seeds) ------------------------------------------------------


def _snake(field: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field).lower()


class BatchTask(BaseModel):
    task_type: Annotated[str, Field(max_length=100)] | None = None
    operation: Annotated[str, Field(max_length=64)] | None = None
    # None: the task type's queue (llm and echo: llm)
    queue: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] | None
    ) = None
    priority: Annotated[StrictInt, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)] = 50
    input: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook_url: Annotated[str, Field(max_length=2048)] | None = None
    origin_instance: Annotated[str, Field(min_length=1, max_length=255)] = "api"
    origin_reference: Annotated[str, Field(max_length=255)] | None = None
    max_retries: Annotated[StrictInt, Field(ge=0, le=MAX_RETRIES_MAX)] | None = None
    run_at: AwareDatetime | None = Field(
        None, description="Run at this time; a past time runs now (beyond the seeds)."
    )
    delay_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Run this many seconds from now (instead of run_at)."
    )
    concurrency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="At most concurrency_limit tasks of this key run at once."
    )
    concurrency_limit: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None,
        description="Submit this item at most once (per tenant, kept OPSGRAPH_IDEMPOTENCY_TTL); "
        "default with an Idempotency-Key header: `<header>:<index>`.",
    )


class BatchIn(BaseModel):
    tasks: list[BatchTask] = Field(min_length=1, max_length=task_submissions.MAX_BATCH)
    partial: StrictBool = False


@router.post("/tasks/batch", status_code=202, summary="Submit tasks in bulk (beyond the seeds)")
async def submit_batch(
    body: BatchIn, state: State, principal: Operator, idempotency_key: IdempotencyKey = None
) -> Any:
    """Up to 1,000 tasks, validated item by item, written in one transaction and enqueued in
    one Redis pipeline. With an invalid item nothing is stored (422 naming each item by its
    index; 409 when every refusal is an idempotency key given before with another request)
    unless `partial`, which stores the valid ones and lists the others in `errors`. Items
    whose keys made tasks before answer those (`replayed`)."""
    specs = [
        task_specs.TaskSpec(
            **t.model_dump(exclude={"idempotency_key"}),
            origin_tenant_id=principal.tenant_id,
            idempotency_key=t.idempotency_key
            or (f"{idempotency_key}:{i}" if idempotency_key else None),
        )
        for i, t in enumerate(body.tasks)
    ]

    def problems(errors: list[task_submissions.ItemError]) -> list[dict[str, Any]]:
        return [
            {
                # the services name fields as GraphQL does; this body spells them snake_case
                "loc": ["body", "tasks", e.index, _snake(e.field) if e.field else "body"],
                "msg": e.message,
                "type": f"value_error.{e.code.lower()}",
            }
            for e in errors
        ]

    try:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            done = await task_submissions.submit_tasks(
                session=session,
                specs=specs,
                defaults=state.settings.task_defaults,
                partial=body.partial,
            )
    except task_submissions.BatchRefused as exc:
        conflicts = all(e.code == KeyConflict.code for e in exc.errors)
        raise HTTPException(409 if conflicts else 422, problems(exc.errors)) from None
    return {
        "submitted": done.stored,
        "task_ids": [str(t.id) for t in done.tasks],
        "replayed": [str(i) for i in done.replayed_ids],
        "errors": problems(done.errors),
    }
