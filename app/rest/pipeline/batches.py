"""Seed 002's batch endpoints (5): the detections of a camera aggregated for one analysis."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.db.base import utcnow
from app.edge.uow import read_only
from app.rest.deps import PlatformOperator, PlatformReader, State
from app.rest.pages import windowed
from app.rest.params import IsoDateTime, Limit, Offset
from app.rest.pipeline.common import NOT_FOUND, TAG
from app.rest.refusals import not_found_only, reading, writing
from app.rest.shapes import shaped
from app.services.pipeline import batches, queries

router = APIRouter(tags=[TAG])


class BatchStatus(StrEnum):
    aggregating = "aggregating"
    completed = "completed"
    failed = "failed"


class BatchRecord(BaseModel):
    batch_id: str
    camera_id: str
    status: str
    detection_count: int
    started_at: datetime
    completed_at: datetime | None
    event_id: int | None
    trigger: str | None


class BatchDetail(BatchRecord):
    last_activity_at: datetime
    window_ends_at: datetime
    analysis_task_id: str | None
    error: str | None
    detection_ids: list[int]


class BatchList(BaseModel):
    batches: list[BatchRecord]
    count: int
    total: int
    limit: int
    offset: int


class ActiveBatch(BaseModel):
    batch_id: str
    camera_id: str
    detection_count: int
    started_at: datetime
    age_seconds: float
    last_activity_seconds: float


class ActiveBatches(BaseModel):
    batches: list[ActiveBatch]
    count: int


class BatchStatsResponse(BaseModel):
    total_batches: int
    active_batches: int
    by_status: dict[str, int]
    by_trigger: dict[str, int]
    avg_detections_per_batch: float
    avg_duration_seconds: float | None
    batches_last_hour: int


class FlushResponse(BaseModel):
    status: str
    batch_id: str
    detection_count: int
    message: str


@router.get("/api/batches", summary="List batches")
async def list_batches(
    state: State,
    principal: PlatformReader,
    camera_id: Annotated[str | None, Query(max_length=255)] = None,
    status: BatchStatus | None = None,
    start_date: IsoDateTime | None = None,
    end_date: IsoDateTime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> BatchList:
    flt = queries.BatchFilter(
        camera_id=camera_id,
        status=status.value if status else None,
        start_date=start_date,
        end_date=end_date,
    )
    found, figures = await windowed(
        state, queries.BATCHES, flt, order_by="started_at", limit=limit, offset=offset
    )
    return BatchList(batches=[shaped(BatchRecord, b) for b in found], **figures)


@router.get("/api/batches/stats", summary="Batch processing stats")
async def batch_stats(state: State, principal: PlatformReader) -> BatchStatsResponse:
    async with read_only(state.sessionmaker) as session:
        s = await queries.batch_stats(session=session)
    return BatchStatsResponse(**s.__dict__)


@router.get("/api/batches/active", summary="Currently aggregating")
async def active_batches(
    state: State,
    principal: PlatformReader,
    camera_id: Annotated[str | None, Query(max_length=255)] = None,
) -> ActiveBatches:
    async with read_only(state.sessionmaker) as session:
        rows = await queries.active_batches(session=session, camera_id=camera_id)
    now = utcnow()
    items = [
        shaped(
            ActiveBatch,
            b,
            age_seconds=round((now - b.started_at).total_seconds(), 1),
            last_activity_seconds=round((now - b.last_activity_at).total_seconds(), 1),
        )
        for b in rows
    ]
    return ActiveBatches(batches=items, count=len(items))


@router.get("/api/batches/{batch_id}", responses=NOT_FOUND, summary="Get batch by ID")
async def get_batch(batch_id: str, state: State, principal: PlatformReader) -> BatchDetail:
    async with reading(state, not_found_only) as session:
        b = await queries.get_batch(session=session, batch_id=batch_id)
        found = await queries.detections_of_batches(session=session, batch_ids=[batch_id])
    return shaped(
        BatchDetail,
        b,
        analysis_task_id=str(b.analysis_task_id) if b.analysis_task_id else None,
        detection_ids=[d.id for d in found[batch_id]],
    )


@router.post(
    "/api/batches/{batch_id}/flush",
    responses={404: {"description": "Unknown or already closed batch"}},  # type: ignore[dict-item]
    summary="Force flush batch",
)
async def flush_batch(batch_id: str, state: State, principal: PlatformOperator) -> FlushResponse:
    async with writing(state, not_found_only) as session:
        b = await batches.flush(session=session, batch_id=batch_id)
    return FlushResponse(
        status="flushed",
        batch_id=b.batch_id,
        detection_count=b.detection_count,
        message="Batch sent for analysis",
    )
