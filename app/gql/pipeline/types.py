"""GraphQL types of the pipeline's records (relations through DataLoaders: a list costs a
fixed number of SQL statements, whatever its length)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.cost import Cost, per_operation
from app.gql.forward import Forwards
from app.services.pipeline import thumbnails


@strawberry.type
class Enrichment(Forwards):
    id: int
    detection_id: int
    camera_id: str
    detection_type: str | None
    model_name: str
    model_version: str | None
    description: str
    attributes: JSON
    confidence: float | None
    latency_ms: float | None
    created_at: datetime


@strawberry.type
class Detection(Forwards):
    id: int
    camera_id: str
    file_path: str
    detection_type: str | None = strawberry.field(description="The most confident object's label.")
    confidence: float | None
    objects: JSON = strawberry.field(
        description="Every object found: label, confidence, bbox [x1, y1, x2, y2]."
    )
    model_name: str
    latency_ms: float | None
    captured_at: datetime
    batch_id: str | None

    @strawberry.field(description="Oldest first; the last is the current one.")
    async def enrichments(self, info: Info) -> list[Enrichment]:
        rows = await info.context.loaders.detection_enrichments.load(self.id)
        return [Enrichment.of(r) for r in rows]

    @strawberry.field(
        description="The frame as a JPEG data URL whose longest side is `size` (32-320); null"
        " when the file is gone or unreadable. Each is a file read and an image decode: it"
        " weighs 100 in the query cost, and one operation may ask for at most"
        " OPSGRAPH_MAX_THUMBNAILS_PER_OPERATION (100) of them.",
        # weight: a decode is tens of milliseconds of CPU where a plain field is microseconds,
        # yet the console's 20 events x 4 frames must stay well under the cost limit (about
        # 8,400 of 25,000); the per-operation cap is what bounds the decodes
        directives=[Cost(weight=100)],
        metadata=per_operation("max_thumbnails_per_operation"),
    )
    async def thumbnail(self, info: Info, size: int = 160) -> str | None:
        settings = info.context.state.settings
        return await thumbnails.cached_thumbnail(
            self.id,
            self.file_path,
            root=settings.cameras_folder,
            size=max(thumbnails.MIN_SIZE, min(size, thumbnails.MAX_SIZE)),
            max_bytes=settings.camera_max_image_bytes,
            max_pixels=settings.camera_max_image_pixels,
            threads=settings.thumbnail_threads,
            cache_size=settings.thumbnail_cache_size,
        )


@strawberry.enum
class BatchStatus(Enum):
    AGGREGATING = "aggregating"
    COMPLETED = "completed"
    FAILED = "failed"


async def _detections(info: Info, batch_id: str, first: int | None) -> list[Detection]:
    rows = await info.context.loaders.batch_detections.load(batch_id)
    return [Detection.of(r) for r in (rows if first is None else rows[: max(0, first)])]


_DETECTIONS = "The batch's detections, oldest first (`first`: only that many, e.g. for thumbnails)."


@strawberry.type
class Batch(Forwards):
    batch_id: str
    camera_id: str
    status: BatchStatus
    detection_count: int
    started_at: datetime
    last_activity_at: datetime
    due_at: datetime = strawberry.field(
        description="When an aggregating batch closes unless more detections arrive (its"
        " window's end or its idle timeout, whichever is sooner)."
    )
    completed_at: datetime | None
    trigger: str | None = strawberry.field(
        description="Why it closed: time_window, idle_timeout, max_size or manual_flush."
    )
    event_id: int | None
    error: str | None

    @strawberry.field(description=_DETECTIONS)
    async def detections(self, info: Info, first: int | None = None) -> list[Detection]:
        return await _detections(info, self.batch_id, first)


@strawberry.type
class SecurityEvent(Forwards):
    batch_id: strawberry.Private[str]
    id: int
    camera_id: str
    risk_score: int
    risk_level: str = strawberry.field(
        description="low (0-29), medium (30-59), high (60-84), critical (85-100)."
    )
    summary: str
    reasoning: str
    detection_count: int
    model_name: str | None
    input_tokens: int
    output_tokens: int
    latency_ms: float | None
    started_at: datetime
    ended_at: datetime
    created_at: datetime

    @strawberry.field
    async def batch(self, info: Info) -> Batch | None:
        row = await info.context.loaders.batches.load(self.batch_id)
        return Batch.of(row) if row is not None else None

    @strawberry.field(description=_DETECTIONS)
    async def detections(self, info: Info, first: int | None = None) -> list[Detection]:
        return await _detections(info, self.batch_id, first)


@strawberry.type
class EnrichmentStats:
    total_enrichments: int
    enrichments_today: int
    by_detection_type: JSON
    avg_confidence: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None


@strawberry.type
class BatchStats:
    total_batches: int
    active_batches: int
    by_status: JSON
    by_trigger: JSON
    avg_detections_per_batch: float
    avg_duration_seconds: float | None
    batches_last_hour: int


@strawberry.type
class DlqQueue:
    queue_name: str = strawberry.field(description="dlq:<queue>")
    queue: str
    count: int


@strawberry.type
class DlqStats:
    queues: list[DlqQueue]
    total_count: int


@strawberry.type
class DlqJob:
    task_id: strawberry.ID
    queue_name: str
    original_job: JSON
    error: str
    attempt_count: int
    first_failed_at: datetime | None
    last_failed_at: datetime | None


@strawberry.type
class CircuitBreaker(Forwards):
    name: str
    state: str = strawberry.field(description="closed, open or half_open")
    failure_count: int
    total_calls: int
    total_failures: int
    times_opened: int
    last_error: str | None


@strawberry.type
class HealthCheck:
    name: str
    status: str = strawberry.field(description="healthy, degraded or unhealthy")
    latency_ms: float | None
    detail: JSON


@strawberry.type
class CameraWatcher:
    """The camera folder watcher (null figures: Redis is unreachable)."""

    state: str | None = strawberry.field(
        description="running, restarting (its event source failed: it rescans and restarts"
        " after a bounded backoff) or stopped (no process watches)"
    )
    worker: str | None
    since: str | None
    restarts: int | None
    last_error: str | None
    last_error_at: str | None
    quarantined: int | None = strawberry.field(description="Files the watcher gave up on.")
    files: JSON = strawberry.field(description="Some quarantined files, with their reasons.")


@strawberry.type
class SystemHealth:
    status: str
    checks: list[HealthCheck]
    models: list[HealthCheck]
    watcher: CameraWatcher


@strawberry.enum
class PipelineErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"


@strawberry.type(description="An expected failure of a pipeline mutation: data, not an exception.")
class PipelineError:
    field: str | None
    code: PipelineErrorCode
    message: str


@strawberry.type
class Camera:
    camera_id: str
    images: int
    last_image_at: datetime | None
    aggregating_batches: int
