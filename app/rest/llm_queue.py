"""Seed 000 (/api/v1/llm): LLM queue stats, tasks, cancel, clear stats and semaphore.
Envelope {"data": ...}; string-typed fields and lowercase status words as the document shows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.db.models import Task
from app.edge.uow import read_only, unit_of_work
from app.kernel.bounds import CLEAR_STATS_HOURS_MAX
from app.kernel.errors import InvalidTransition, NotFound
from app.rest.deps import Admin, Operator, Reader, State
from app.rest.params import PathId
from app.rest.refusals import Refusals, reading, task_not_found, writing
from app.rest.shapes import columns
from app.services.llm import queue as llm_queue
from app.services.llm import semaphore

router = APIRouter(prefix="/api/v1/llm", tags=["LLM Monitoring"])

OPERATION_KIND = {"chat_completion": "CHAT", "generate_embedding": "EMBEDDING"}
# seed 000's figures of each queue, in its order
QUEUE_FIGURES = (
    "queue",
    "queued",
    "running",
    "workers",
    "max_depth",
    "depth_percent",
    "total_input_tokens",
    "total_output_tokens",
    "total_cost_usd",
)
NOT_CANCELLED = Refusals(
    {NotFound: 400, InvalidTransition: 400},
    message="Task could not be cancelled (not found or already completed)",
    invalid_input=False,
)


def _ts(value: datetime | None) -> str | None:
    # Seed 000 writes "2026-03-09T14:30:00.000000+00:00": microseconds always shown.
    return value.isoformat(timespec="microseconds") if value else None


def task_summary(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": str(task.id),
        "queue": task.queue,
        "operation": task.operation,
        "status": task.status.lower(),
        "priority": str(task.priority),
        "created_at": _ts(task.created_at),
    }
    if task.started_at is not None:
        out["started_at"] = _ts(task.started_at)
    out["metadata"] = json.dumps(task.meta)
    out["attempts"] = str(task.attempts)
    return out


def task_status(task: Task) -> dict[str, Any]:
    out = task_summary(task)
    attempts = out.pop("attempts")
    metadata = out.pop("metadata")
    kind = OPERATION_KIND.get(task.operation or "", (task.operation or "").upper())
    out["data"] = json.dumps({**task.input, "task_type": kind})
    out["metadata"] = metadata
    out["result_ttl"] = str(task.result_ttl_seconds or 0)
    out["attempts"] = attempts
    return out


@router.get("/stats", summary="Get LLM Queue Stats")
async def get_llm_stats(state: State, principal: Reader) -> dict[str, Any]:
    async with read_only(state.sessionmaker) as session:
        s = await llm_queue.llm_stats(
            session=session,
            redis=state.redis,
            config=state.settings.semaphore,
            queues=state.settings.llm_queues,
            max_depth=state.settings.llm_queue_max_depth,
            tenant_id=principal.tenant_id,
        )
    return {
        "data": {
            "queues": [columns(q, *QUEUE_FIGURES) for q in s.queues],
            **columns(
                s,
                "total_queued",
                "total_cost_usd",
                "total_input_tokens",
                "total_output_tokens",
                "total_tokens",
                "estimated_completion_time_seconds",
                "estimated_completion_time_human",
            ),
            "estimated_completion_times_human": {
                q.queue: llm_queue.human_duration(q.estimated_seconds) for q in s.queues
            },
            "semaphore_stats": vars(s.semaphore),
        }
    }


@router.delete("/stats", status_code=204, summary="Clear Stats")
async def clear_llm_stats(
    state: State,
    principal: Admin,
    older_than_hours: Annotated[
        int,
        Query(ge=0, le=CLEAR_STATS_HOURS_MAX, description="Remove completed tasks older than this"),
    ] = 24,
) -> Response:
    async with unit_of_work(state.sessionmaker, state.redis) as session:
        await llm_queue.clear_stats(
            session=session, redis=state.redis, older_than_hours=older_than_hours
        )
    return Response(status_code=204)


@router.get("/tasks", summary="List LLM Tasks")
async def list_llm_tasks(state: State, principal: Reader) -> dict[str, Any]:
    async with read_only(state.sessionmaker) as session:
        rows = await llm_queue.active_llm_tasks(session=session, tenant_id=principal.tenant_id)
    return {"data": [task_summary(t) for t in rows]}


@router.delete("/tasks", summary="Cancel All Tasks")
async def cancel_all_llm_tasks(state: State, principal: Operator) -> dict[str, Any]:
    count = await llm_queue.cancel_all_llm_tasks(
        units=lambda: unit_of_work(state.sessionmaker, state.redis),
        tenant_id=principal.tenant_id,
    )
    return {"data": {"cancelled": count, "message": "Task cancellation requested for LLM queue"}}


@router.get("/tasks/{task_id}", summary="Get Task Status")
async def get_llm_task(task_id: PathId, state: State, principal: Reader) -> dict[str, Any]:
    async with reading(state, task_not_found) as session:
        task = await llm_queue.get_llm_task(
            session=session, task_id=task_id, tenant_id=principal.tenant_id
        )
    return {"data": task_status(task)}


@router.delete(
    "/tasks/{task_id}",
    status_code=204,
    summary="Cancel Task",
    responses={400: {"description": "Unknown task, or one already finished"}},
)
async def cancel_llm_task(task_id: PathId, state: State, principal: Operator) -> Response:
    async with writing(state, NOT_CANCELLED) as session:
        await llm_queue.cancel_llm_task(
            session=session, task_id=task_id, tenant_id=principal.tenant_id
        )
    return Response(status_code=204)


@router.delete("/semaphore", summary="Clear Semaphore")
async def clear_llm_semaphore(state: State, principal: Admin) -> dict[str, Any]:
    high, low = await semaphore.clear_orphans(state.redis)
    return {
        "data": {
            "high_priority_cleared": high,
            "low_priority_cleared": low,
            "total_cleared": high + low,
        }
    }
