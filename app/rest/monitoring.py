"""Seed 001 (/api/v1/monitoring): task lists and details, media, stats, queues and workers."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from app.db.models import Task
from app.edge.uow import read_only
from app.kernel.errors import NotFound
from app.kernel.timing import duration_ms
from app.rest import schemas_monitoring as s
from app.rest.deps import PlatformReader, Reader, State
from app.rest.params import IsoDateTime, Page, SortOrder, page_count, page_request
from app.services.fleet import stats
from app.services.tasks import commands as tasks
from app.services.tasks import queries as task_queries

router = APIRouter(prefix="/api/v1/monitoring", tags=["Monitoring"])

# opsgraph's canonical statuses in seed 001's words, and back.
STATUS_001 = {
    "QUEUED": "PENDING",
    "RUNNING": "EXECUTING",
    "COMPLETED": "COMPLETED",
    "FAILED": "FAILED",
    "CANCELLED": "CANCELLED",
}
STATUS_FROM_001 = {v: k for k, v in STATUS_001.items()}


class Status001(StrEnum):
    PENDING = "PENDING"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class SortBy(StrEnum):
    created_at = "created_at"
    updated_at = "updated_at"
    started_at = "started_at"
    completed_at = "completed_at"
    status = "status"
    task_type = "task_type"
    provider_type = "provider_type"
    priority = "priority"
    progress = "progress"
    duration_ms = "duration_ms"


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def list_item(task: Task) -> s.TaskListItem:
    return s.TaskListItem(
        id=task.id,
        task_type=task.task_type.upper(),
        provider_type=_upper(task.provider),
        status=STATUS_001[task.status],
        progress=task.progress,
        origin_instance=task.origin_instance,
        origin_zone=task.origin_zone,
        origin_tenant_id=task.origin_tenant_id,
        created_at=task.created_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        duration_ms=duration_ms(task.started_at, task.completed_at),
        has_error=bool(task.errors),
    )


def detail(task: Task) -> s.TaskDetailResponse:
    task_data: dict[str, Any] = {
        "operation": task.operation,
        "input": task.input,
        "result": task.result,
        "metadata": task.meta,
        "model": task.model,
        "input_tokens": task.input_tokens,
        "output_tokens": task.output_tokens,
        "cost_usd": task.cost_usd,
        "latency_ms": task.latency_ms,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "dead_lettered": task.dead_lettered,
        "cancel_requested_at": task.cancel_requested_at,
        "progress_history": task.progress_history,
        "result_ttl_seconds": task.result_ttl_seconds,
    }
    return s.TaskDetailResponse(
        **list_item(task).model_dump(exclude={"has_error"}),
        origin_reference=task.origin_reference,
        updated_at=task.updated_at,
        queue_name=task.queue,
        priority=task.priority,
        celery_task_id=task.job_id,
        service_task_id=None,
        executor_type="arq",
        executor_instance=task.worker_name,
        config=task.config,
        webhook_url=task.webhook_url,
        errors=list(task.errors) or None,
        retry_count=task.retry_count,
        is_resumed=task.is_resumed,
        resume_attempt_count=task.resume_attempt_count,
        last_resume_attempt=task.last_resume_attempt,
        service_requests=list(task.service_requests) or None,
        task_data=task_data,
    )


async def _load(state: State, principal: Reader, task_id: uuid.UUID) -> Task:
    async with read_only(state.sessionmaker) as session:
        try:
            return await tasks.get_task(
                session=session, task_id=task_id, tenant_id=principal.tenant_id
            )
        except NotFound as exc:
            raise HTTPException(404, "Task not found") from exc


@router.get("/tasks", response_model=s.TaskListResponse, summary="List Monitored Tasks")
async def list_monitored_tasks(
    state: State,
    principal: Reader,
    created_after: Annotated[
        IsoDateTime | None, Query(description="Filter tasks created after")
    ] = None,
    created_before: Annotated[IsoDateTime | None, Query(description="Created before")] = None,
    origin_instance: Annotated[str | None, Query(max_length=255)] = None,
    origin_tenant_id: Annotated[str | None, Query(max_length=255)] = None,
    origin_zone: Annotated[str | None, Query(max_length=255)] = None,
    page: Page = 1,
    page_size: Annotated[int, Query(ge=1, le=100, description="Items per page")] = 50,
    provider_type: Annotated[str | None, Query(max_length=64)] = None,
    search: Annotated[
        str | None,
        Query(max_length=36, pattern=r"^[0-9a-fA-F-]+$", description="Search by task ID prefix"),
    ] = None,
    sort_by: SortBy = SortBy.created_at,
    sort_order: SortOrder = SortOrder.desc,
    status: Status001 | None = None,
    task_type: Annotated[str | None, Query(max_length=64)] = None,
) -> s.TaskListResponse:
    flt = task_queries.TaskFilter(
        statuses=[STATUS_FROM_001[status.value]] if status else [],
        task_types=[task_type.lower()] if task_type else [],
        providers=[provider_type.lower()] if provider_type else [],
        origin_instance=origin_instance,
        origin_zone=origin_zone,
        origin_tenant_id=origin_tenant_id,
        created_after=created_after,
        created_before=created_before,
        id_prefix=search,
    )
    window = page_request(
        page=page,
        page_size=page_size,
        order_by=sort_by.value,
        descending=sort_order == SortOrder.desc,
    )
    async with read_only(state.sessionmaker) as session:
        total = await task_queries.count_tasks(
            session=session, filter=flt, tenant_id=principal.tenant_id
        )
        rows = await task_queries.list_tasks(
            session=session,
            filter=flt,
            page=window,
            tenant_id=principal.tenant_id,
        )
    return s.TaskListResponse(
        items=[list_item(t) for t, _ in rows.rows],
        total=total,
        page=page,
        page_size=page_size,
        pages=page_count(total, page_size),
    )


@router.get("/tasks/{task_id}", response_model=s.TaskDetailResponse, summary="Get Monitored Task")
async def get_monitored_task(
    task_id: uuid.UUID, state: State, principal: Reader
) -> s.TaskDetailResponse:
    return detail(await _load(state, principal, task_id))


@router.get("/tasks/{task_id}/media", response_model=s.TaskMediaResponse, summary="Get Task Media")
async def get_task_media(
    task_id: uuid.UUID, state: State, principal: Reader
) -> s.TaskMediaResponse:
    task = await _load(state, principal, task_id)
    media = task.media or {}

    def items(raw: Any) -> list[s.MediaItem]:
        return [s.MediaItem.model_validate(m) for m in raw or [] if isinstance(m, dict)]

    return s.TaskMediaResponse(
        task_id=task.id, inputs=items(media.get("inputs")), outputs=items(media.get("outputs"))
    )


@router.get("/stats", response_model=s.AggregateStats, summary="Get Monitoring Stats")
async def get_monitoring_stats(
    state: State,
    principal: Reader,
    origin_instance: Annotated[str | None, Query(max_length=255)] = None,
    origin_zone: Annotated[str | None, Query(max_length=255)] = None,
) -> s.AggregateStats:
    async with read_only(state.sessionmaker) as session:
        agg = await stats.aggregate_stats(
            session=session,
            tenant_id=principal.tenant_id,
            origin_instance=origin_instance,
            origin_zone=origin_zone,
        )
    return s.AggregateStats(
        total_tasks=agg.total_tasks,
        by_status={STATUS_001[k]: v for k, v in agg.by_status.items()},
        by_provider={k.upper(): v for k, v in agg.by_provider.items()},
        by_task_type={k.upper(): v for k, v in agg.by_task_type.items()},
        tasks_last_hour=agg.tasks_last_hour,
        tasks_last_24h=agg.tasks_last_24h,
    )


@router.get("/queues", response_model=s.QueueStatsResponse, summary="Get Queue Stats")
async def get_queue_stats(state: State, principal: Reader) -> s.QueueStatsResponse:
    async with read_only(state.sessionmaker) as session:
        o = await stats.queue_overview(
            session=session,
            redis=state.redis,
            known_queues=state.settings.queues,
            tenant_id=principal.tenant_id,
        )
    return s.QueueStatsResponse(
        queues=[s.QueueStats(**vars(q)) for q in o.queues],
        total_pending=o.total_pending,
        total_active=o.total_active,
        timestamp=o.timestamp,
    )


@router.get("/workers", response_model=s.WorkerStatsResponse, summary="Get Worker Stats")
async def get_worker_stats(state: State, principal: PlatformReader) -> s.WorkerStatsResponse:
    o = await stats.worker_overview(redis=state.redis)
    return s.WorkerStatsResponse(
        workers=[
            s.WorkerInfo(
                name=w.name,
                queues=w.queues,
                concurrency=w.concurrency,
                active_tasks=w.active,
                utilization_pct=w.utilization_pct,
                has_capacity=w.has_capacity,
                tasks_completed_total=w.completed,
                tasks_per_minute=w.tasks_per_minute,
                memory_mb=w.memory_mb,
            )
            for w in o.workers
        ],
        total_workers=o.total_workers,
        total_capacity=o.total_capacity,
        total_active=o.total_active,
        total_utilization_pct=o.total_utilization_pct,
        workers_at_capacity=o.workers_at_capacity,
        timestamp=o.timestamp,
    )


@router.get("/workers/health", response_model=s.WorkerHealthResponse, summary="Get Workers Health")
async def get_workers_health(state: State, principal: PlatformReader) -> s.WorkerHealthResponse:
    h = await stats.worker_health(redis=state.redis, known_queues=state.settings.queues)
    return s.WorkerHealthResponse(**vars(h))
