"""Seed 002's enrichment endpoints (6): what the enrichment models said of each detection."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Enrichment
from app.edge.uow import read_only
from app.rest.deps import PlatformOperator, PlatformReader, State
from app.rest.pages import windowed
from app.rest.params import ROW_ID_MAX, IsoDateTime, Limit, Offset
from app.rest.pipeline.common import NOT_FOUND, TAG, DbId
from app.rest.refusals import not_found_only, reading, writing
from app.rest.shapes import shaped
from app.services.pipeline import queries, stages

router = APIRouter(tags=[TAG])


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


async def _records(session: AsyncSession, rows: list[Enrichment]) -> list[EnrichmentRecord]:
    events = await queries.event_ids_of_detections(
        session=session, detection_ids=[r.detection_id for r in rows]
    )
    return [shaped(EnrichmentRecord, r, event_id=events.get(r.detection_id)) for r in rows]


@router.get("/api/enrichment", summary="List enrichment records")
async def list_enrichments(
    state: State,
    principal: PlatformReader,
    detection_type: Annotated[str | None, Query(max_length=64)] = None,
    camera_id: Annotated[str | None, Query(max_length=255)] = None,
    start_date: IsoDateTime | None = None,
    end_date: IsoDateTime | None = None,
    min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    event_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None,
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
    records, figures = await windowed(
        state,
        queries.ENRICHMENTS,
        flt,
        order_by="created_at",
        limit=limit,
        offset=offset,
        shape=_records,
    )
    return EnrichmentList(enrichments=records, **figures)


@router.get("/api/enrichment/stats", summary="Enrichment statistics")
async def enrichment_stats(state: State, principal: PlatformReader) -> EnrichmentStatsResponse:
    async with read_only(state.sessionmaker) as session:
        s = await queries.enrichment_stats(session=session)
    return EnrichmentStatsResponse(**s.__dict__)


@router.get(
    "/api/enrichment/detection/{detection_id}",
    responses=NOT_FOUND,
    summary="Get by detection ID",
)
async def enrichments_of_detection(
    detection_id: DbId, state: State, principal: PlatformReader
) -> DetectionEnrichments:
    async with reading(state, not_found_only) as session:
        await queries.get_detection(session=session, detection_id=detection_id)
        found = await queries.enrichments_of_detections(
            session=session, detection_ids=[detection_id]
        )
        records = await _records(session, found[detection_id])
    return DetectionEnrichments(detection_id=detection_id, enrichments=records, count=len(records))


@router.get("/api/enrichment/event/{event_id}", responses=NOT_FOUND, summary="Get all for event")
async def enrichments_of_event(
    event_id: DbId, state: State, principal: PlatformReader
) -> EventEnrichments:
    async with reading(state, not_found_only) as session:
        rows = await queries.enrichments_of_event(session=session, event_id=event_id)
        records = await _records(session, rows)
    return EventEnrichments(event_id=event_id, enrichments=records, count=len(records))


@router.post(
    "/api/enrichment/reprocess/{detection_id}",
    responses=NOT_FOUND,
    summary="Reprocess enrichment",
)
async def reprocess_enrichment(
    detection_id: DbId, state: State, principal: PlatformOperator
) -> ReprocessResponse:
    async with writing(state, not_found_only) as session:
        await stages.reprocess(session=session, detection_id=detection_id)
    return ReprocessResponse(
        status="queued",
        detection_id=detection_id,
        message="Enrichment reprocessing queued successfully",
    )


@router.get("/api/enrichment/{enrichment_id}", responses=NOT_FOUND, summary="Get enrichment by ID")
async def get_enrichment(
    enrichment_id: DbId, state: State, principal: PlatformReader
) -> EnrichmentRecord:
    async with reading(state, not_found_only) as session:
        row = await queries.get_enrichment(session=session, enrichment_id=enrichment_id)
        (record,) = await _records(session, [row])
    return record
