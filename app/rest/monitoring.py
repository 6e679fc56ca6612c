"""Seed 001 (/api/v1/monitoring): task lists and details, media, stats, queues and workers."""

from __future__ import annotations

import mimetypes
import uuid
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse

from app.db.models import Task
from app.edge.uow import read_only
from app.kernel.timing import duration_ms
from app.rest import pages
from app.rest import schemas_monitoring as s
from app.rest.deps import PlatformReader, Reader, State
from app.rest.params import IsoDateTime, Page, PageSize, SortOrder
from app.rest.refusals import reading, task_not_found
from app.rest.shapes import columns, shaped
from app.rest.statuses import in_words, type_in_words, types_from_words
from app.services.fleet import stats
from app.services.tasks import commands as tasks
from app.services.tasks import queries as task_queries

router = APIRouter(prefix="/api/v1/monitoring", tags=["Monitoring"])

# opsgraph's canonical statuses in seed 001's words, and back.
STATUS_001 = in_words("PENDING", "EXECUTING", "COMPLETED", "FAILED", "CANCELLED")
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


def _in_words(task: Task) -> dict[str, Any]:
    """What every task answer shows in seed 001's words, or works out."""
    return {
        "task_type": type_in_words(task.task_type),
        "provider_type": task.provider.upper() if task.provider else None,
        "status": STATUS_001[task.status],
        "duration_ms": duration_ms(task.started_at, task.completed_at),
    }


def list_item(task: Task) -> s.TaskListItem:
    return shaped(s.TaskListItem, task, **_in_words(task), has_error=bool(task.errors))


def detail(task: Task) -> s.TaskDetailResponse:
    task_data = {
        **columns(task, "operation", "input", "result"),
        "metadata": task.meta,
        **columns(
            task,
            "model",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "latency_ms",
            "attempts",
            "max_attempts",
            "dead_lettered",
            "cancel_requested_at",
            "progress_history",
            "result_ttl_seconds",
            "run_at",
            "due_at",
        ),
    }
    return shaped(
        s.TaskDetailResponse,
        task,
        **_in_words(task),
        queue_name=task.queue,
        celery_task_id=task.job_id,
        service_task_id=None,
        executor_type="arq",
        executor_instance=task.worker_name,
        errors=list(task.errors) or None,
        service_requests=list(task.service_requests) or None,
        task_data=task_data,
    )


async def _load(state: State, principal: Reader, task_id: uuid.UUID) -> Task:
    async with reading(state, task_not_found) as session:
        return await tasks.get_task(session=session, task_id=task_id, tenant_id=principal.tenant_id)


@router.get("/tasks", summary="List Monitored Tasks")
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
    page_size: PageSize = 50,
    provider_type: Annotated[str | None, Query(max_length=64)] = None,
    search: Annotated[
        str | None,
        Query(max_length=36, pattern=r"^[0-9a-fA-F-]+$", description="Search by task ID prefix"),
    ] = None,
    sort_by: SortBy = SortBy.created_at,
    sort_order: SortOrder = SortOrder.desc,
    status: Status001 | None = None,
    task_type: Annotated[str | None, Query(max_length=100)] = None,
) -> s.TaskListResponse:
    flt = task_queries.TaskFilter(
        statuses=[STATUS_FROM_001[status.value]] if status else [],
        task_types=types_from_words(task_type) if task_type else [],
        providers=[provider_type.lower()] if provider_type else [],
        origin_instance=origin_instance,
        origin_zone=origin_zone,
        origin_tenant_id=origin_tenant_id,
        created_after=created_after,
        created_before=created_before,
        id_prefix=search,
    )
    found, figures = await pages.numbered(
        state, task_queries.TASKS, flt, page, page_size, sort_by, sort_order, principal
    )
    return s.TaskListResponse(items=[list_item(t) for t in found], **figures)


@router.get("/tasks/{task_id}", summary="Get Monitored Task")
async def get_monitored_task(
    task_id: uuid.UUID, state: State, principal: Reader
) -> s.TaskDetailResponse:
    return detail(await _load(state, principal, task_id))


@router.get("/tasks/{task_id}/media", summary="Get Task Media")
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


@router.get(
    "/tasks/{task_id}/media/{name}",
    summary="Get a Task Media File (beyond the seeds)",
    responses={
        200: {"content": {"application/octet-stream": {}}},
        404: {"description": "Unknown task, or no stored file of that name"},
    },
)
async def get_task_media_file(
    task_id: uuid.UUID,
    name: Annotated[str, Path(max_length=255)],
    state: State,
    principal: Reader,
) -> FileResponse:
    """The file behind a media item's `url`: what a task handler stored in its own folder."""
    task = await _load(state, principal, task_id)
    file = task_queries.media_file(task, name, state.settings.data_dir)
    if file is None:
        raise HTTPException(404, f"task {task_id} has no stored media file named {name!r}")
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return FileResponse(file, media_type=kind)


@router.get("/stats", summary="Get Monitoring Stats")
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
    return shaped(
        s.AggregateStats,
        agg,
        by_status={STATUS_001[k]: v for k, v in agg.by_status.items()},
        by_provider={k.upper(): v for k, v in agg.by_provider.items()},
        by_task_type={type_in_words(k): v for k, v in agg.by_task_type.items()},
    )


@router.get("/queues", summary="Get Queue Stats")
async def get_queue_stats(state: State, principal: Reader) -> s.QueueStatsResponse:
    async with read_only(state.sessionmaker) as session:
        o = await stats.queue_overview(
            session=session,
            redis=state.redis,
            known_queues=state.settings.queues,
            tenant_id=principal.tenant_id,
        )
    return shaped(s.QueueStatsResponse, o, queues=[shaped(s.QueueStats, q) for q in o.queues])


@router.get("/workers", summary="Get Worker Stats")
async def get_worker_stats(state: State, principal: PlatformReader) -> s.WorkerStatsResponse:
    o = await stats.worker_overview(redis=state.redis)
    workers = [
        shaped(s.WorkerInfo, w, active_tasks=w.active, tasks_completed_total=w.completed)
        for w in o.workers
    ]
    return shaped(s.WorkerStatsResponse, o, workers=workers)


@router.get("/workers/health", summary="Get Workers Health")
async def get_workers_health(state: State, principal: PlatformReader) -> s.WorkerHealthResponse:
    h = await stats.worker_health(redis=state.redis, known_queues=state.settings.queues)
    return s.WorkerHealthResponse(**vars(h))
