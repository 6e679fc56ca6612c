"""GraphQL types of the pipeline's records (relations through DataLoaders: a list costs a
fixed number of SQL statements, whatever its length)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.db.models import Batch as BatchRow
from app.db.models import Detection as DetectionRow
from app.db.models import Enrichment as EnrichmentRow
from app.db.models import SecurityEvent as EventRow
from app.gql.context import Info
from app.gql.cost import Cost, per_operation
from app.services.pipeline import thumbnails
from app.services.pipeline.breakers import BreakerState


@strawberry.type
class Enrichment:
    row: strawberry.Private[EnrichmentRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def detection_id(self) -> int:
        return self.row.detection_id

    @strawberry.field
    def camera_id(self) -> str:
        return self.row.camera_id

    @strawberry.field
    def detection_type(self) -> str | None:
        return self.row.detection_type

    @strawberry.field
    def model_name(self) -> str:
        return self.row.model_name

    @strawberry.field
    def model_version(self) -> str | None:
        return self.row.model_version

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field
    def attributes(self) -> JSON:
        return cast(JSON, self.row.attributes)

    @strawberry.field
    def confidence(self) -> float | None:
        return self.row.confidence

    @strawberry.field
    def latency_ms(self) -> float | None:
        return self.row.latency_ms

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type
class Detection:
    row: strawberry.Private[DetectionRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def camera_id(self) -> str:
        return self.row.camera_id

    @strawberry.field
    def file_path(self) -> str:
        return self.row.file_path

    @strawberry.field(description="The most confident object's label.")
    def detection_type(self) -> str | None:
        return self.row.detection_type

    @strawberry.field
    def confidence(self) -> float | None:
        return self.row.confidence

    @strawberry.field(description="Every object found: label, confidence, bbox [x1, y1, x2, y2].")
    def objects(self) -> JSON:
        return cast(JSON, self.row.objects)

    @strawberry.field
    def model_name(self) -> str:
        return self.row.model_name

    @strawberry.field
    def latency_ms(self) -> float | None:
        return self.row.latency_ms

    @strawberry.field
    def captured_at(self) -> datetime:
        return self.row.captured_at

    @strawberry.field
    def batch_id(self) -> str | None:
        return self.row.batch_id

    @strawberry.field(description="Oldest first; the last is the current one.")
    async def enrichments(self, info: Info) -> list[Enrichment]:
        rows = await info.context.loaders.detection_enrichments.load(self.row.id)
        return [Enrichment(row=r) for r in rows]

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
            self.row.id,
            self.row.file_path,
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


@strawberry.type
class Batch:
    row: strawberry.Private[BatchRow]

    @strawberry.field
    def batch_id(self) -> str:
        return self.row.batch_id

    @strawberry.field
    def camera_id(self) -> str:
        return self.row.camera_id

    @strawberry.field
    def status(self) -> BatchStatus:
        return BatchStatus(self.row.status)

    @strawberry.field
    def detection_count(self) -> int:
        return self.row.detection_count

    @strawberry.field
    def started_at(self) -> datetime:
        return self.row.started_at

    @strawberry.field
    def last_activity_at(self) -> datetime:
        return self.row.last_activity_at

    @strawberry.field(
        description="When an aggregating batch closes unless more detections arrive (its"
        " window's end or its idle timeout, whichever is sooner)."
    )
    def due_at(self) -> datetime:
        return self.row.due_at

    @strawberry.field
    def completed_at(self) -> datetime | None:
        return self.row.completed_at

    @strawberry.field(
        description="Why it closed: time_window, idle_timeout, max_size or manual_flush."
    )
    def trigger(self) -> str | None:
        return self.row.trigger

    @strawberry.field
    def event_id(self) -> int | None:
        return self.row.event_id

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field(
        description="The batch's detections, oldest first (`first`: only that many, e.g. for"
        " thumbnails)."
    )
    async def detections(self, info: Info, first: int | None = None) -> list[Detection]:
        rows = await info.context.loaders.batch_detections.load(self.row.batch_id)
        return [Detection(row=r) for r in (rows if first is None else rows[: max(0, first)])]


@strawberry.type
class SecurityEvent:
    row: strawberry.Private[EventRow]

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def camera_id(self) -> str:
        return self.row.camera_id

    @strawberry.field
    def risk_score(self) -> int:
        return self.row.risk_score

    @strawberry.field(description="low (0-29), medium (30-59), high (60-84), critical (85-100).")
    def risk_level(self) -> str:
        return self.row.risk_level

    @strawberry.field
    def summary(self) -> str:
        return self.row.summary

    @strawberry.field
    def reasoning(self) -> str:
        return self.row.reasoning

    @strawberry.field
    def detection_count(self) -> int:
        return self.row.detection_count

    @strawberry.field
    def model_name(self) -> str | None:
        return self.row.model_name

    @strawberry.field
    def input_tokens(self) -> int:
        return self.row.input_tokens

    @strawberry.field
    def output_tokens(self) -> int:
        return self.row.output_tokens

    @strawberry.field
    def latency_ms(self) -> float | None:
        return self.row.latency_ms

    @strawberry.field
    def started_at(self) -> datetime:
        return self.row.started_at

    @strawberry.field
    def ended_at(self) -> datetime:
        return self.row.ended_at

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    async def batch(self, info: Info) -> Batch | None:
        row = await info.context.loaders.batches.load(self.row.batch_id)
        return Batch(row=row) if row is not None else None

    @strawberry.field(
        description="The batch's detections, oldest first (`first`: only that many, e.g. for"
        " thumbnails)."
    )
    async def detections(self, info: Info, first: int | None = None) -> list[Detection]:
        rows = await info.context.loaders.batch_detections.load(self.row.batch_id)
        return [Detection(row=r) for r in (rows if first is None else rows[: max(0, first)])]


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
class CircuitBreaker:
    name: str
    state: str = strawberry.field(description="closed, open or half_open")
    failure_count: int
    total_calls: int
    total_failures: int
    times_opened: int
    last_error: str | None

    @classmethod
    def of(cls, b: BreakerState) -> CircuitBreaker:
        return cls(
            name=b.name,
            state=b.state,
            failure_count=b.failure_count,
            total_calls=b.total_calls,
            total_failures=b.total_failures,
            times_opened=b.times_opened,
            last_error=b.last_error,
        )


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
