"""Seed 002's enrichment (6) and batch (5) endpoints over the pipeline services."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from app.db.base import utcnow
from app.db.models import Batch, Enrichment
from app.edge.uow import read_only, unit_of_work
from app.kernel.errors import NotFound
from app.rest.deps import PlatformOperator, PlatformReader, State
from app.rest.params import IsoDateTime, Offset, page_request
from app.services.pipeline import batches, queries, stages

router = APIRouter(tags=["AI Pipeline"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id"}}
Limit = Annotated[int, Query(ge=1, le=1000, description="Max results (1-1000)")]
# ids are PostgreSQL bigints
# ids up to 2**53: exact in every JSON number (a 2**63 bound is not, once read as a float)
DbId = Annotated[int, Path(ge=1, le=2**53)]


class EnrichmentRecord(BaseModel):
    id: int
    detection_id: int
    event_id: int | None
    camera_id: str
    detection_type: str | None
    model_name: str
    model_version: str | None
    description: str
    attributes: dict[str, Any]
    confidence: float | None
    latency_ms: float | None
    created_at: datetime


class EnrichmentList(BaseModel):
    enrichments: list[EnrichmentRecord]
    count: int
    total: int
    limit: int
    offset: int


class EnrichmentsOf(BaseModel):
    enrichments: list[EnrichmentRecord]
    count: int


class DetectionEnrichments(EnrichmentsOf):
    detection_id: int


class EventEnrichments(EnrichmentsOf):
    event_id: int


class EnrichmentStatsResponse(BaseModel):
    total_enrichments: int
    enrichments_today: int
    by_detection_type: dict[str, int]
    avg_confidence: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None


class ReprocessResponse(BaseModel):
    status: str
    detection_id: int
    message: str


async def _records(session: Any, rows: list[Enrichment]) -> list[EnrichmentRecord]:
    events = await queries.event_ids_of_detections(
        session=session, detection_ids=[r.detection_id for r in rows]
    )
    return [
        EnrichmentRecord(
            id=r.id,
            detection_id=r.detection_id,
            event_id=events.get(r.detection_id),
            camera_id=r.camera_id,
            detection_type=r.detection_type,
            model_name=r.model_name,
            model_version=r.model_version,
            description=r.description,
            attributes=r.attributes,
            confidence=r.confidence,
            latency_ms=r.latency_ms,
            created_at=r.created_at,
        )
        for r in rows
    ]


def _not_found(exc: NotFound) -> HTTPException:
    return HTTPException(404, exc.message)


@router.get("/api/enrichment", response_model=EnrichmentList, summary="List enrichment records")
async def list_enrichments(
    state: State,
    principal: PlatformReader,
    detection_type: Annotated[str | None, Query(max_length=64)] = None,
    camera_id: Annotated[str | None, Query(max_length=255)] = None,
    start_date: IsoDateTime | None = None,
    end_date: IsoDateTime | None = None,
    min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    event_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> EnrichmentList:
    flt = queries.EnrichmentFilter(
        detection_type=detection_type,
        camera_id=camera_id,
        start_date=start_date,
        end_date=end_date,
        min_confidence=min_confidence,
        event_id=event_id,
    )
    window = page_request(
        page=offset // limit + 1,
        page_size=limit,
        order_by="created_at",
        descending=True,
        offset=offset,
    )
    async with read_only(state.sessionmaker) as session:
        page = await queries.list_enrichments(session=session, filter=flt, page=window)
        total = await queries.count_enrichments(session=session, filter=flt)
        records = await _records(session, [r for r, _ in page.rows])
    return EnrichmentList(
        enrichments=records, count=len(records), total=total, limit=limit, offset=offset
    )


@router.get(
    "/api/enrichment/stats", response_model=EnrichmentStatsResponse, summary="Enrichment statistics"
)
async def enrichment_stats(state: State, principal: PlatformReader) -> EnrichmentStatsResponse:
    async with read_only(state.sessionmaker) as session:
        s = await queries.enrichment_stats(session=session)
    return EnrichmentStatsResponse(**s.__dict__)


@router.get(
    "/api/enrichment/detection/{detection_id}",
    response_model=DetectionEnrichments,
    responses=NOT_FOUND,
    summary="Get by detection ID",
)
async def enrichments_of_detection(
    detection_id: DbId, state: State, principal: PlatformReader
) -> DetectionEnrichments:
    async with read_only(state.sessionmaker) as session:
        try:
            await queries.get_detection(session=session, detection_id=detection_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        found = await queries.enrichments_of_detections(
            session=session, detection_ids=[detection_id]
        )
        records = await _records(session, found[detection_id])
    return DetectionEnrichments(detection_id=detection_id, enrichments=records, count=len(records))


@router.get(
    "/api/enrichment/event/{event_id}",
    response_model=EventEnrichments,
    responses=NOT_FOUND,
    summary="Get all for event",
)
async def enrichments_of_event(
    event_id: DbId, state: State, principal: PlatformReader
) -> EventEnrichments:
    async with read_only(state.sessionmaker) as session:
        try:
            rows = await queries.enrichments_of_event(session=session, event_id=event_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        records = await _records(session, rows)
    return EventEnrichments(event_id=event_id, enrichments=records, count=len(records))


@router.post(
    "/api/enrichment/reprocess/{detection_id}",
    response_model=ReprocessResponse,
    responses=NOT_FOUND,
    summary="Reprocess enrichment",
)
async def reprocess_enrichment(
    detection_id: DbId, state: State, principal: PlatformOperator
) -> ReprocessResponse:
    try:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            await stages.reprocess(session=session, detection_id=detection_id)
    except NotFound as exc:
        raise _not_found(exc) from None
    return ReprocessResponse(
        status="queued",
        detection_id=detection_id,
        message="Enrichment reprocessing queued successfully",
    )


@router.get(
    "/api/enrichment/{enrichment_id}",
    response_model=EnrichmentRecord,
    responses=NOT_FOUND,
    summary="Get enrichment by ID",
)
async def get_enrichment(
    enrichment_id: DbId, state: State, principal: PlatformReader
) -> EnrichmentRecord:
    async with read_only(state.sessionmaker) as session:
        try:
            row = await queries.get_enrichment(session=session, enrichment_id=enrichment_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        (record,) = await _records(session, [row])
    return record


# --- batches --------------------------------------------------------------------------------


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


def _batch(b: Batch) -> BatchRecord:
    return BatchRecord(
        batch_id=b.batch_id,
        camera_id=b.camera_id,
        status=b.status,
        detection_count=b.detection_count,
        started_at=b.started_at,
        completed_at=b.completed_at,
        event_id=b.event_id,
        trigger=b.trigger,
    )


@router.get("/api/batches", response_model=BatchList, summary="List batches")
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
    window = page_request(
        page=offset // limit + 1,
        page_size=limit,
        order_by="started_at",
        descending=True,
        offset=offset,
    )
    async with read_only(state.sessionmaker) as session:
        page = await queries.list_batches(session=session, filter=flt, page=window)
        total = await queries.count_batches(session=session, filter=flt)
    items = [_batch(b) for b, _ in page.rows]
    return BatchList(batches=items, count=len(items), total=total, limit=limit, offset=offset)


@router.get(
    "/api/batches/stats", response_model=BatchStatsResponse, summary="Batch processing stats"
)
async def batch_stats(state: State, principal: PlatformReader) -> BatchStatsResponse:
    async with read_only(state.sessionmaker) as session:
        s = await queries.batch_stats(session=session)
    return BatchStatsResponse(**s.__dict__)


@router.get("/api/batches/active", response_model=ActiveBatches, summary="Currently aggregating")
async def active_batches(
    state: State,
    principal: PlatformReader,
    camera_id: Annotated[str | None, Query(max_length=255)] = None,
) -> ActiveBatches:
    async with read_only(state.sessionmaker) as session:
        rows = await queries.active_batches(session=session, camera_id=camera_id)
    now = utcnow()
    items = [
        ActiveBatch(
            batch_id=b.batch_id,
            camera_id=b.camera_id,
            detection_count=b.detection_count,
            started_at=b.started_at,
            age_seconds=round((now - b.started_at).total_seconds(), 1),
            last_activity_seconds=round((now - b.last_activity_at).total_seconds(), 1),
        )
        for b in rows
    ]
    return ActiveBatches(batches=items, count=len(items))


@router.get(
    "/api/batches/{batch_id}",
    response_model=BatchDetail,
    responses=NOT_FOUND,
    summary="Get batch by ID",
)
async def get_batch(batch_id: str, state: State, principal: PlatformReader) -> BatchDetail:
    async with read_only(state.sessionmaker) as session:
        try:
            b = await queries.get_batch(session=session, batch_id=batch_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        found = await queries.detections_of_batches(session=session, batch_ids=[batch_id])
    return BatchDetail(
        **_batch(b).model_dump(),
        last_activity_at=b.last_activity_at,
        window_ends_at=b.window_ends_at,
        analysis_task_id=str(b.analysis_task_id) if b.analysis_task_id else None,
        error=b.error,
        detection_ids=[d.id for d in found[batch_id]],
    )


@router.post(
    "/api/batches/{batch_id}/flush",
    response_model=FlushResponse,
    responses={404: {"description": "Unknown or already closed batch"}},  # type: ignore[dict-item]
    summary="Force flush batch",
)
async def flush_batch(batch_id: str, state: State, principal: PlatformOperator) -> FlushResponse:
    try:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            b = await batches.flush(session=session, batch_id=batch_id)
    except NotFound as exc:
        raise _not_found(exc) from None
    return FlushResponse(
        status="flushed",
        batch_id=b.batch_id,
        detection_count=b.detection_count,
        message="Batch sent for analysis",
    )
