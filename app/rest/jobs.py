"""Seed 002's background jobs (12 endpoints), plus starting a job and downloading an export's
file (beyond the seed). Job words at this edge: pending, running, completed, failed,
cancelled. Mutating calls accept the seed's `X-API-Key` header."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principals import Permission, Principal
from app.db.models import Task
from app.edge.state import AppState
from app.edge.uow import read_only, unit_of_work
from app.kernel.errors import DomainError, NotFound
from app.kernel.paging import PageRequest
from app.rest import files, pages
from app.rest.deps import Operator, Reader, State
from app.rest.job_start import StartIn, params_of
from app.rest.params import IsoDateTime, Limit, Offset, PathId
from app.rest.refusals import Refusals, reading, writing
from app.services.jobs import actions, queries, types
from app.services.jobs import exports as job_exports

T = TypeVar("T")

router = APIRouter(prefix="/api/jobs", tags=["Background Jobs"])
KNOWN: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown job"},
    409: {"description": "Not in a state for this"},
}
refuse = Refusals(
    {actions.JobConflict: 409, actions.NotAllowed: 403},
    query_fields=frozenset({"status", "job_type", "sort", "level"}),
)


def _metadata(job: Task) -> dict[str, Any]:
    params = {k: v for k, v in job.input.items() if k != "tenant_id"}
    return {**params, **job.meta}


def job_out(job: Task) -> dict[str, Any]:
    return {
        "job_id": str(job.id),
        "job_type": job.task_type,
        "status": types.STATUS_WORDS[job.status],
        "progress": round(job.progress),
        "queue": job.queue,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "error_message": job.errors[-1] if job.errors else None,
        "result": job.result,
        "metadata": _metadata(job),
    }


def _list_of(words: Any) -> str:
    """A pattern for a comma-separated list of these words (so the OpenAPI document says
    exactly which values are accepted)."""
    one = "(" + "|".join(words) + ")"
    return f"^{one}(,{one})*$"


def _words(value: str | None) -> list[str]:
    return [w.strip() for w in (value or "").split(",") if w.strip()]


# --- starting (beyond the seed) -------------------------------------------------------------


@router.post("", status_code=202, summary="Start a job (beyond the seed)")
async def start_job(body: StartIn, state: State, principal: Operator) -> Any:
    """`export`: params `target` (security_events, tasks, logs, metrics), `format` (csv,
    json), `since`/`until`, and per target `camera_id`, `min_risk_score`, `queue`, `status`,
    `agent_id`, `level`; `pause_ms` between batches of 500 rows spares the database.
    `cleanup` (admin role): `older_than_days` (else each kind's retention setting; below one
    hour only with `force: true`)."""
    async with writing(state, refuse) as session:
        job = await actions.start_job(
            session=session,
            job_type=body.job_type,
            params=params_of(body),
            actor=principal.subject,
            tenant_id=principal.tenant_id,
            is_admin=principal.can(Permission.ADMIN),
        )
        return job_out(job)


# --- reading -------------------------------------------------------------------------------


@router.get("", summary="List all jobs with filtering")
async def list_jobs(
    state: State,
    principal: Reader,
    job_type: Literal["export", "cleanup", "ai_processing"] | None = None,
    status: Literal["pending", "running", "completed", "failed", "cancelled"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """Newest first. `count` is the seed's (the jobs on this page); `total` (beyond the seed)
    is every job the filter matches, so a client knows how far to page."""
    f = queries.JobFilter(
        job_types=[job_type] if job_type else (),
        statuses=types.statuses([status]) if status else (),
        tenant_id=principal.tenant_id,
    )
    found, figures = await pages.windowed(
        state, queries.JOBS, f, order_by="created_at", limit=limit, offset=offset
    )
    return {"jobs": [job_out(j) for j in found], **figures}


@router.get("/search", summary="Advanced job search with facets")
async def search_jobs(
    state: State,
    principal: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Type, error, metadata")] = None,
    status: Annotated[
        str | None, Query(pattern=_list_of(types.STATUSES), description="Comma-separated")
    ] = None,
    job_type: Annotated[
        str | None, Query(pattern=_list_of(types.JOB_TYPES), description="Comma-separated")
    ] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
    completed_after: IsoDateTime | None = None,
    completed_before: IsoDateTime | None = None,
    has_error: bool | None = None,
    min_duration: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    max_duration: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    sort: Literal[
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
        "progress",
        "duration",
        "job_type",
        "status",
    ] = "created_at",
    order: Literal["asc", "desc"] = "desc",
) -> Any:
    """`count` is the number matching (all pages); `aggregations` count by status and by type,
    each under every filter but its own."""
    async with reading(state, refuse) as session:
        f = queries.JobFilter(
            job_types=_words(job_type),
            statuses=types.statuses(_words(status)),
            queue=queue,
            text=q,
            created_after=created_after,
            created_before=created_before,
            completed_after=completed_after,
            completed_before=completed_before,
            has_error=has_error,
            min_duration=min_duration,
            max_duration=max_duration,
            tenant_id=principal.tenant_id,
        )
        window = PageRequest(limit=limit, order_by=sort, descending=order == "desc", offset=offset)
        found, total = await pages.listed(session, queries.JOBS, f, window)
        facets = await queries.facets(session=session, filter=f)
    return {
        "jobs": [job_out(j) for j in found],
        "count": total,
        "limit": limit,
        "offset": offset,
        "aggregations": {"by_status": facets.by_status, "by_type": facets.by_type},
    }


@router.get("/stats", summary="Get aggregate job statistics")
async def job_stats(state: State, principal: Reader) -> Any:
    async with read_only(state.sessionmaker) as session:
        s = await queries.stats(session=session, tenant_id=principal.tenant_id)
    return s.__dict__


@router.get("/types", summary="List available job types")
async def job_types(principal: Reader) -> Any:
    return {
        "types": [
            {"type": t.type, "description": t.description, "supports_abort": t.supports_abort}
            for t in types.JOB_TYPES.values()
        ]
    }


class BulkIn(BaseModel):
    job_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=actions.MAX_BULK
    )


@router.post("/bulk-cancel", summary="Cancel multiple jobs at once")
async def bulk_cancel(body: BulkIn, state: State, principal: Operator) -> Any:
    """Each job is stopped as DELETE would (a pending one cancelled, a running abortable one
    aborted), in its own transaction; the answer has a result per job."""
    results: list[dict[str, Any]] = []
    for raw in dict.fromkeys(body.job_ids):
        try:
            job_id = uuid.UUID(raw)
        except ValueError:
            results.append({"job_id": raw, "success": False, "error": "Job not found"})
            continue
        try:
            async with unit_of_work(state.sessionmaker, state.redis) as session:
                done = await actions.stop_job(
                    session=session, job_id=job_id, tenant_id=principal.tenant_id
                )
            results.append({"job_id": raw, "success": True, "message": done.action.capitalize()})
        except NotFound:
            results.append({"job_id": raw, "success": False, "error": "Job not found"})
        except DomainError as exc:
            results.append({"job_id": raw, "success": False, "error": exc.message})
    ok = sum(1 for r in results if r["success"])
    return {"successful": ok, "failed": len(results) - ok, "results": results}


async def _job(session: AsyncSession, job_id: uuid.UUID, principal: Principal) -> Task:
    return await actions.get_job(session=session, job_id=job_id, tenant_id=principal.tenant_id)


async def _act(
    action: Callable[..., Awaitable[T]], job_id: uuid.UUID, state: AppState, principal: Principal
) -> T:
    """Stop the caller's job (cancel, abort, or whichever fits) in a unit of work."""
    async with writing(state, refuse) as session:
        return await action(session=session, job_id=job_id, tenant_id=principal.tenant_id)


@router.get("/{job_id}", responses=KNOWN, summary="Get job status")
async def get_job(job_id: PathId, state: State, principal: Reader) -> Any:
    async with reading(state, refuse) as session:
        return job_out(await _job(session, job_id, principal))


@router.get("/{job_id}/detail", responses=KNOWN, summary="Get detailed job information")
async def job_detail(job_id: PathId, state: State, principal: Reader) -> Any:
    async with reading(state, refuse) as session:
        job = await _job(session, job_id, principal)
    end = job.completed_at or (datetime.now(job.created_at.tzinfo) if job.started_at else None)
    return {
        **job_out(job),
        "progress_history": [
            {
                "timestamp": p.get("at"),
                "progress": round(float(p.get("progress", 0))),
                "message": p.get("message"),
            }
            for p in job.progress_history
        ],
        "timing": {
            "created_at": job.created_at,
            "started_at": job.started_at,
            "completed_at": job.completed_at,
            "queue_wait_seconds": queries.seconds_between(job.created_at, job.started_at),
            "running_seconds": queries.seconds_between(job.started_at, end),
        },
        "retry_info": {
            "attempt": job.attempts,
            "max_attempts": job.max_attempts,
            "last_error": job.errors[-1] if job.errors else None,
        },
    }


@router.get("/{job_id}/history", responses=KNOWN, summary="Get job execution history")
async def job_history(job_id: PathId, state: State, principal: Reader) -> Any:
    async with reading(state, refuse) as session:
        job = await _job(session, job_id, principal)
        history = await queries.transitions(session, job.id)

    def word(status: str | None) -> str | None:
        return None if status is None else types.STATUS_WORDS.get(status, status.lower())

    return {
        "job_id": str(job.id),
        "transitions": [
            {
                "from_status": word(t.from_status),
                "to_status": word(t.to_status),
                "timestamp": t.at,
                "reason": t.reason,
            }
            for t in history
        ],
        "attempts": [
            {
                "attempt": a.attempt,
                "started_at": a.started_at,
                "ended_at": a.ended_at,
                "status": a.status,
            }
            for a in queries.attempts(history)
        ],
    }


@router.get("/{job_id}/logs", responses=KNOWN, summary="Get job execution logs")
async def job_logs(
    job_id: PathId,
    state: State,
    principal: Reader,
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None,
    since: IsoDateTime | None = None,
    limit: Limit = 100,
) -> Any:
    async with reading(state, refuse) as session:
        job = await _job(session, job_id, principal)
        lines = await queries.logs(
            session=session, job_id=job.id, level=level, since=since, limit=limit
        )
    return {
        "job_id": str(job.id),
        "logs": [{"timestamp": x.timestamp, "level": x.level, "message": x.message} for x in lines],
        "count": len(lines),
    }


@router.get(
    "/{job_id}/download",
    responses={**KNOWN, **files.DOWNLOADED},
    response_class=FileResponse,
    summary="Download an export's file (beyond the seed)",
)
async def download(job_id: PathId, state: State, principal: Reader) -> Any:
    async with reading(state, refuse) as session:
        job = await _job(session, job_id, principal)
        path = job_exports.file_of(session, job)
    if path is None:
        raise HTTPException(
            409,
            f"job {job_id} has no file"
            + (
                f" ({job.task_type} jobs write none)"
                if job.task_type != "export"
                else f" (it is {types.STATUS_WORDS[job.status]})"
                if job.status != "COMPLETED"
                else " (removed by retention)"
            ),
        )
    return files.download(path)


@router.post("/{job_id}/cancel", responses=KNOWN, summary="Cancel a queued job")
async def cancel_job(job_id: PathId, state: State, principal: Operator) -> Any:
    await _act(actions.cancel_job, job_id, state, principal)
    return {"job_id": str(job_id), "status": "cancelled", "message": "Job cancelled successfully"}


@router.post("/{job_id}/abort", responses=KNOWN, summary="Abort a running job")
async def abort_job(job_id: PathId, state: State, principal: Operator) -> Any:
    """The worker stops within a second; the job then ends `cancelled` and an export's
    partial file is removed."""
    await _act(actions.abort_job, job_id, state, principal)
    return {"job_id": str(job_id), "status": "aborted", "message": "Abort signal sent to worker"}


@router.delete("/{job_id}", responses=KNOWN, summary="Cancel or abort a job")
async def delete_job(job_id: PathId, state: State, principal: Operator) -> Any:
    done = await _act(actions.stop_job, job_id, state, principal)
    return {
        "job_id": str(job_id),
        "action": done.action,
        "previous_status": done.previous_status,
        "message": "Job cancelled" if done.action == "cancelled" else "Abort signal sent to worker",
    }
