"""Reading the pipeline's records: the lists, details and figures the REST views and GraphQL
show, and the material an analysis reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Batch, CameraImage, Detection, Enrichment, SecurityEvent
from app.kernel.errors import NotFound
from app.kernel.paging import PageRequest
from app.services.pipeline import batches
from app.services.rows import Listing, by_key, grouped, matching, within


@dataclass(frozen=True)
class CameraWindow:
    """One camera's records (every camera's without one) between two times, both included."""

    camera_id: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None


def in_window(stmt: Select[Any], model: Any, at: Any, f: CameraWindow) -> Select[Any]:
    """`stmt` narrowed to `f`'s camera and times (`at`: the column of a record's time)."""
    stmt = matching(stmt, model, f, "camera_id")
    return within(stmt, at, f.start_date, f.end_date, inclusive=True)


# --- enrichments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrichmentFilter(CameraWindow):
    detection_type: str | None = None
    min_confidence: float | None = None
    event_id: int | None = None


def _enrichments(stmt: Select[Any], f: EnrichmentFilter) -> Select[Any]:
    stmt = in_window(stmt, Enrichment, Enrichment.created_at, f)
    stmt = matching(stmt, Enrichment, f, "detection_type")
    if f.min_confidence is not None:
        stmt = stmt.where(Enrichment.confidence >= f.min_confidence)
    if f.event_id is not None:
        in_event = (
            select(Detection.id)
            .join(Batch, Batch.batch_id == Detection.batch_id)
            .where(Batch.event_id == f.event_id)
        )
        stmt = stmt.where(Enrichment.detection_id.in_(in_event))
    return stmt


ENRICHMENT_ORDER = {"created_at": Enrichment.created_at, "confidence": Enrichment.confidence}
ENRICHMENTS: Listing[Enrichment, EnrichmentFilter] = Listing(
    Enrichment, _enrichments, ENRICHMENT_ORDER
)
list_enrichments, count_enrichments = ENRICHMENTS.page, ENRICHMENTS.count


async def get_enrichment(*, session: AsyncSession, enrichment_id: int) -> Enrichment:
    missing = NotFound(f"no enrichment {enrichment_id}", field="id")
    return await by_key(session, Enrichment, enrichment_id, missing)


async def get_detection(*, session: AsyncSession, detection_id: int) -> Detection:
    missing = NotFound(f"no detection {detection_id}", field="id")
    return await by_key(session, Detection, detection_id, missing)


async def enrichments_of_detections(
    *, session: AsyncSession, detection_ids: Sequence[int]
) -> dict[int, list[Enrichment]]:
    if not detection_ids:
        return {}
    stmt = select(Enrichment).where(Enrichment.detection_id.in_(list(detection_ids)))
    stmt = stmt.order_by(Enrichment.id)
    return await grouped(session, stmt, lambda e: e.detection_id, detection_ids)


async def enrichments_of_event(*, session: AsyncSession, event_id: int) -> list[Enrichment]:
    await get_event(session=session, event_id=event_id)
    page = await list_enrichments(
        session=session,
        filter=EnrichmentFilter(event_id=event_id),
        page=PageRequest(limit=1000, order_by="created_at", descending=False),
    )
    return [row for row, _ in page.rows]


@dataclass(frozen=True)
class EnrichmentStats:
    total_enrichments: int
    enrichments_today: int
    by_detection_type: dict[str, int]
    avg_confidence: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None


async def enrichment_stats(*, session: AsyncSession) -> EnrichmentStats:
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    totals = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Enrichment.created_at >= today),
                func.avg(Enrichment.confidence),
                func.avg(Enrichment.latency_ms),
                func.percentile_cont(0.95).within_group(Enrichment.latency_ms),
            )
        )
    ).one()
    kind = func.coalesce(Enrichment.detection_type, "unknown").label("kind")
    by_type = await session.execute(select(kind, func.count()).group_by(kind))

    def rounded(v: Any, digits: int) -> float | None:
        return None if v is None else round(float(v), digits)

    return EnrichmentStats(
        total_enrichments=int(totals[0]),
        enrichments_today=int(totals[1]),
        by_detection_type={str(k): int(v) for k, v in by_type},
        avg_confidence=rounded(totals[2], 3),
        avg_latency_ms=rounded(totals[3], 1),
        p95_latency_ms=rounded(totals[4], 1),
    )


# --- batches --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFilter(CameraWindow):
    status: str | None = None


def _batches(stmt: Select[Any], f: BatchFilter) -> Select[Any]:
    return matching(in_window(stmt, Batch, Batch.started_at, f), Batch, f, "status")


BATCH_ORDER = {"started_at": Batch.started_at}
BATCHES: Listing[Batch, BatchFilter] = Listing(Batch, _batches, BATCH_ORDER, key="batch_id")
list_batches, count_batches = BATCHES.page, BATCHES.count


async def get_batch(*, session: AsyncSession, batch_id: str) -> Batch:
    missing = NotFound(f"no batch {batch_id!r}", field="batch_id")
    return await by_key(session, Batch, batch_id, missing)


async def batches_by_id(*, session: AsyncSession, batch_ids: Sequence[str]) -> dict[str, Batch]:
    if not batch_ids:
        return {}
    stmt = select(Batch).where(Batch.batch_id.in_(list(batch_ids)))
    return {b.batch_id: b for b in (await session.execute(stmt)).scalars()}


async def active_batches(*, session: AsyncSession, camera_id: str | None = None) -> list[Batch]:
    stmt = select(Batch).where(Batch.status == batches.AGGREGATING).order_by(Batch.started_at)
    if camera_id is not None:
        stmt = stmt.where(Batch.camera_id == camera_id)
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class BatchStats:
    total_batches: int
    active_batches: int
    by_status: dict[str, int]
    by_trigger: dict[str, int]
    avg_detections_per_batch: float
    avg_duration_seconds: float | None
    batches_last_hour: int


async def batch_stats(*, session: AsyncSession) -> BatchStats:
    statuses = await session.execute(select(Batch.status, func.count()).group_by(Batch.status))
    by_status = {k: v for k, v in statuses.tuples()}
    triggers = await session.execute(
        select(Batch.trigger, func.count())
        .where(Batch.trigger.is_not(None))
        .group_by(Batch.trigger)
    )
    by_trigger = {k: v for k, v in triggers.tuples()}
    row = (
        await session.execute(
            select(
                func.count(),
                func.avg(Batch.detection_count),
                func.avg(func.extract("epoch", Batch.completed_at - Batch.started_at)),
                func.count().filter(Batch.started_at >= utcnow() - timedelta(hours=1)),
            )
        )
    ).one()
    return BatchStats(
        total_batches=int(row[0]),
        active_batches=int(by_status.get(batches.AGGREGATING, 0)),
        by_status={str(k): int(v) for k, v in by_status.items()},
        by_trigger={str(k): int(v) for k, v in by_trigger.items()},
        avg_detections_per_batch=round(float(row[1] or 0), 2),
        avg_duration_seconds=None if row[2] is None else round(float(row[2]), 2),
        batches_last_hour=int(row[3]),
    )


async def detections_of_batches(
    *, session: AsyncSession, batch_ids: Sequence[str]
) -> dict[str, list[Detection]]:
    if not batch_ids:
        return {}
    stmt = select(Detection).where(Detection.batch_id.in_(list(batch_ids)))
    stmt = stmt.order_by(Detection.captured_at, Detection.id)
    return await grouped(session, stmt, lambda d: d.batch_id, batch_ids)


async def batch_material(
    *, session: AsyncSession, batch_id: str
) -> tuple[Batch, list[dict[str, Any]]]:
    """What the analysis of a batch reads: each detection with its latest enrichment."""
    batch = await get_batch(session=session, batch_id=batch_id)
    detections = (await detections_of_batches(session=session, batch_ids=[batch_id]))[batch_id]
    found = await enrichments_of_detections(
        session=session, detection_ids=[d.id for d in detections]
    )
    material = []
    for d in detections:
        latest = found[d.id][-1] if found[d.id] else None
        material.append(
            {
                "detection_id": d.id,
                "captured_at": d.captured_at.isoformat(),
                "objects": d.objects,
                "description": latest.description if latest else None,
                "attributes": latest.attributes if latest else None,
            }
        )
    return batch, material


# --- security events ------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    camera_id: str | None = None
    min_risk_score: int | None = None
    risk_levels: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


def _events(stmt: Select[Any], f: EventFilter) -> Select[Any]:
    stmt = matching(stmt, SecurityEvent, f, "camera_id")
    if f.min_risk_score is not None:
        stmt = stmt.where(SecurityEvent.risk_score >= f.min_risk_score)
    if f.risk_levels:
        stmt = stmt.where(SecurityEvent.risk_level.in_(list(f.risk_levels)))
    return within(stmt, SecurityEvent.created_at, f.created_after, f.created_before)


EVENT_ORDER = {"created_at": SecurityEvent.created_at, "risk_score": SecurityEvent.risk_score}
EVENTS: Listing[SecurityEvent, EventFilter] = Listing(SecurityEvent, _events, EVENT_ORDER)
list_events, count_events = EVENTS.page, EVENTS.count


async def get_event(*, session: AsyncSession, event_id: int) -> SecurityEvent:
    missing = NotFound(f"no security event {event_id}", field="event_id")
    return await by_key(session, SecurityEvent, event_id, missing)


async def event_ids_of_detections(
    *, session: AsyncSession, detection_ids: Sequence[int]
) -> dict[int, int | None]:
    """The security event each detection ended up in (through its batch), if any yet."""
    if not detection_ids:
        return {}
    stmt = (
        select(Detection.id, Batch.event_id)
        .outerjoin(Batch, Batch.batch_id == Detection.batch_id)
        .where(Detection.id.in_(list(detection_ids)))
    )
    return {k: v for k, v in (await session.execute(stmt)).tuples()}


MAX_CAMERAS = 1000  # a camera list's bound (an installation has tens)


@dataclass(frozen=True)
class CameraSummary:
    camera_id: str
    images: int
    last_image_at: datetime | None
    aggregating: int  # batches open now


async def cameras(*, session: AsyncSession) -> list[CameraSummary]:
    """Every camera that sent an image: how many, the latest, and its open batches."""
    seen = (
        select(
            CameraImage.camera_id,
            func.count().label("images"),
            func.max(CameraImage.seen_at).label("last"),
        )
        .group_by(CameraImage.camera_id)
        .subquery()
    )
    open_batches = (
        select(Batch.camera_id, func.count().label("n"))
        .where(Batch.status == "aggregating")
        .group_by(Batch.camera_id)
        .subquery()
    )
    rows = await session.execute(
        select(seen.c.camera_id, seen.c.images, seen.c.last, func.coalesce(open_batches.c.n, 0))
        .outerjoin(open_batches, open_batches.c.camera_id == seen.c.camera_id)
        .order_by(seen.c.camera_id)
        .limit(MAX_CAMERAS)
    )
    return [CameraSummary(c, int(n), last, int(a)) for c, n, last, a in rows.all()]
