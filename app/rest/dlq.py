"""Seed 002's dead letter queue (5) and system (3) endpoints. Mutating calls accept the
seed's `X-API-Key` header (any operator credential does)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.state import AppState
from app.edge.uow import read_only
from app.kernel.bounds import LIMIT_MAX
from app.rest.deps import PlatformOperator, PlatformReader, State
from app.rest.refusals import not_found_only, reading, writing
from app.rest.shapes import shaped
from app.services.fleet import health
from app.services.fleet.breakers import Breakers
from app.services.pipeline import quarantine
from app.services.tasks import dlq

router = APIRouter(tags=["Dead Letter Queue"])
system = APIRouter(tags=["System"])

UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown queue or name"}}


def _ts(value: datetime | None) -> str | None:
    # seed 002 writes "2025-12-23T10:30:05.000000" (no zone): shown in UTC, microseconds always
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") if value else None


class DeadJob(BaseModel):
    original_job: dict[str, Any]
    error: str
    attempt_count: int
    first_failed_at: str | None
    last_failed_at: str | None
    queue_name: str
    task_id: str


class DeadJobs(BaseModel):
    queue_name: str
    jobs: list[DeadJob]
    count: int


class RequeueResponse(BaseModel):
    success: bool
    queue_name: str
    requeued_count: int
    remaining_count: int
    task_ids: list[str]
    message: str


class ClearResponse(BaseModel):
    success: bool
    queue_name: str
    cleared_count: int
    message: str


async def _queue(session: AsyncSession, state: AppState, name: str) -> str:
    return await dlq.find_queue(session=session, name=name, configured=state.settings.known_queues)


@router.get("/api/dlq/stats", summary="DLQ statistics")
async def dlq_stats(state: State, principal: PlatformReader) -> dict[str, int]:
    pipeline = state.settings.pipeline
    async with read_only(state.sessionmaker) as session:
        found = await dlq.summary(
            session=session, always=[pipeline.detection_queue, pipeline.analysis_queue]
        )
    return {**{f"{q}_count": n for q, n in found.items()}, "total_count": sum(found.values())}


@router.get("/api/dlq/jobs/{queue_name}", responses=UNKNOWN, summary="List jobs")
async def dlq_jobs(
    queue_name: str,
    state: State,
    principal: PlatformReader,
    start: Annotated[int, Query(ge=0, le=dlq.MAX_START, description="Start index (0-based)")] = 0,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX, description="Maximum jobs to return")] = 100,
) -> DeadJobs:
    async with reading(state, not_found_only) as session:
        queue = await _queue(session, state, queue_name)
        dead = await dlq.list_dead(session=session, queue=queue, start=start, limit=limit)
    jobs = [
        DeadJob(
            original_job=d.task.input,
            error=d.error,
            attempt_count=d.task.attempts,
            first_failed_at=_ts(d.first_failed_at),
            last_failed_at=_ts(d.last_failed_at),
            queue_name=queue,
            task_id=str(d.task.id),
        )
        for d in dead
    ]
    return DeadJobs(queue_name=queue_name, jobs=jobs, count=len(jobs))


async def _requeue(state: AppState, queue_name: str, limit: int) -> RequeueResponse:
    async with writing(state, not_found_only) as session:
        queue = await _queue(session, state, queue_name)
        done, remaining = await dlq.requeue(session=session, queue=queue, limit=limit)
    return RequeueResponse(
        success=bool(done),
        queue_name=queue_name,
        requeued_count=len(done),
        remaining_count=remaining,
        task_ids=[str(t.id) for t in done],
        message=f"{len(done)} job(s) requeued" if done else f"{queue_name} is empty",
    )


@router.post(
    "/api/dlq/requeue/{queue_name}",
    responses=UNKNOWN,
    summary="Requeue single job (oldest first)",
)
async def requeue_one(
    queue_name: str, state: State, principal: PlatformOperator
) -> RequeueResponse:
    return await _requeue(state, queue_name, 1)


@router.post(
    "/api/dlq/requeue-all/{queue_name}",
    responses=UNKNOWN,
    summary=f"Requeue all jobs (at most {dlq.REQUEUE_ALL_MAX} per call)",
)
async def requeue_all(
    queue_name: str, state: State, principal: PlatformOperator
) -> RequeueResponse:
    return await _requeue(state, queue_name, dlq.REQUEUE_ALL_MAX)


@router.delete("/api/dlq/{queue_name}", responses=UNKNOWN, summary="Clear queue")
async def clear_queue(queue_name: str, state: State, principal: PlatformOperator) -> ClearResponse:
    async with writing(state, not_found_only) as session:
        queue = await _queue(session, state, queue_name)
        cleared = await dlq.clear(session=session, queue=queue)
    return ClearResponse(
        success=True,
        queue_name=queue_name,
        cleared_count=cleared,
        message=f"{cleared} job(s) removed from {queue_name}",
    )


# --- system ---------------------------------------------------------------------------------


class BreakerView(BaseModel):
    name: str
    state: str
    failure_count: int
    total_calls: int
    total_failures: int
    times_opened: int
    last_error: str | None


class BreakersResponse(BaseModel):
    circuit_breakers: dict[str, BreakerView]
    total_count: int
    open_count: int


class ResetResponse(BaseModel):
    name: str
    state: str
    message: str


def _breakers(state: Any) -> Breakers:
    return Breakers(state.redis, state.settings.breakers)


def _configured(state: Any) -> list[str]:
    return [s.name for s in state.settings.model_services()]


@system.get("/api/system/circuit-breakers", summary="Circuit breakers")
async def circuit_breakers(state: State, principal: PlatformReader) -> BreakersResponse:
    found = await _breakers(state).states(_configured(state))
    views = {b.name: shaped(BreakerView, b) for b in found}
    return BreakersResponse(
        circuit_breakers=views,
        total_count=len(views),
        open_count=sum(1 for v in views.values() if v.state == "open"),
    )


@system.post(
    "/api/system/circuit-breakers/{name}/reset",
    responses=UNKNOWN,
    summary="Reset circuit breaker",
)
async def reset_breaker(name: str, state: State, principal: PlatformOperator) -> ResetResponse:
    breakers = _breakers(state)
    known = {b.name for b in await breakers.states(_configured(state))}
    if name not in known:
        raise HTTPException(404, f"unknown circuit breaker {name!r}; known: {sorted(known)}")
    await breakers.reset(name)
    return ResetResponse(name=name, state="closed", message=f"circuit breaker {name} reset")


@system.get("/api/system/health", summary="System health")
async def system_health(state: State, principal: PlatformReader) -> JSONResponse:
    found = await state.health.current()

    def check(c: health.Check) -> dict[str, Any]:
        return {"status": c.status, "latency_ms": c.latency_ms, **c.detail}

    body = {
        "status": found.status,
        "services": {name: check(c) for name, c in found.checks.items()},
        "models": {name: check(c) for name, c in found.models.items()},
        # the camera watcher: its state, restarts and last error, and the files it gave up
        # on (a bad name, a link out of the root, unreadable); this route is refused to
        # tenant-scoped credentials, so naming files and folders of the host is fine here
        "watcher": await quarantine.watcher_report(state.redis),
    }
    return JSONResponse(body, status_code=503 if found.status == "unhealthy" else 200)
