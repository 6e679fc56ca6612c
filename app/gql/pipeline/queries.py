"""Pipeline queries: thin resolvers over app.services.pipeline, app.services.tasks.dlq and the
breakers."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.errors import user_error
from app.gql.forward import forward
from app.gql.pagination import (
    Connection,
    Listed,
    OrderDirection,
    Paged,
    Slice,
    Sort,
    connection,
)
from app.gql.permissions import CanReadPlatform
from app.gql.pipeline.types import (
    Batch,
    BatchStats,
    BatchStatus,
    Camera,
    CameraWatcher,
    CircuitBreaker,
    Detection,
    DlqJob,
    DlqQueue,
    DlqStats,
    Enrichment,
    EnrichmentStats,
    HealthCheck,
    SecurityEvent,
    SystemHealth,
)
from app.gql.reads import or_null
from app.kernel.bounds import LIMIT_MAX
from app.kernel.errors import NotFound
from app.services.fleet.breakers import Breakers
from app.services.pipeline import quarantine, queries
from app.services.tasks import dlq


@strawberry.enum
class SecurityEventOrderField(Enum):
    CREATED_AT = "created_at"
    RISK_SCORE = "risk_score"


@strawberry.input
class SecurityEventOrder:
    field: SecurityEventOrderField = SecurityEventOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input
class SecurityEventFilter:
    camera_id: str | None = None
    min_risk_score: int | None = None
    risk_level: list[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_service(self) -> queries.EventFilter:
        return forward(queries.EventFilter, self, risk_levels=tuple(self.risk_level or ()))


@strawberry.input
class BatchFilter:
    camera_id: str | None = None
    status: BatchStatus | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def to_service(self) -> queries.BatchFilter:
        return forward(
            queries.BatchFilter,
            self,
            status=self.status.value if self.status else None,
            start_date=self.started_after,
            end_date=self.started_before,
        )


@strawberry.input
class EnrichmentFilter:
    detection_type: str | None = None
    camera_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    min_confidence: float | None = None
    event_id: int | None = None

    def to_service(self) -> queries.EnrichmentFilter:
        return forward(
            queries.EnrichmentFilter,
            self,
            start_date=self.created_after,
            end_date=self.created_before,
        )


async def dlq_queue(info: Info, session: AsyncSession, queue: str) -> str:
    """`dlq:<queue>` or `<queue>` → the queue; NotFound when no such queue exists."""
    name = queue if queue.startswith(dlq.PREFIX) else dlq.PREFIX + queue
    return await dlq.find_queue(
        session=session, name=name, configured=info.context.state.settings.known_queues
    )


def breakers_of(info: Info) -> Breakers:
    state = info.context.state
    return Breakers(state.redis, state.settings.breakers)


def configured_breakers(info: Info) -> list[str]:
    return [s.name for s in info.context.state.settings.model_services()]


async def load_dlq_stats(info: Info) -> DlqStats:
    pipeline = info.context.state.settings.pipeline
    async with info.context.reading() as session:
        found = await dlq.summary(
            session=session, always=[pipeline.detection_queue, pipeline.analysis_queue]
        )
    return DlqStats(
        queues=[DlqQueue(queue_name=dlq.PREFIX + q, queue=q, count=n) for q, n in found.items()],
        total_count=sum(found.values()),
    )


EVENTS = Listed("securityEvents", queries.EVENTS, SecurityEvent.of)
BATCHES = Listed("batches", queries.BATCHES, Batch.of, Sort("started_at"))
ENRICHMENTS = Listed("enrichments", queries.ENRICHMENTS, Enrichment.of, Sort("created_at"))


@strawberry.type
class PipelineQueries:
    @strawberry.field(
        permission_classes=[CanReadPlatform],
        extensions=[Paged(SecurityEventFilter, SecurityEventOrder)],
    )
    async def security_events(self, info: Info, window: Slice) -> Connection[SecurityEvent]:
        return await connection(info, window, EVENTS, window.filter.to_service())

    @strawberry.field(permission_classes=[CanReadPlatform], description="Null if unknown.")
    async def security_event(self, info: Info, id: int) -> SecurityEvent | None:
        return await or_null(
            info, lambda s: queries.get_event(session=s, event_id=id), SecurityEvent.of
        )

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="Every camera that sent an image: counts, the latest, open batches.",
    )
    async def cameras(self, info: Info) -> list[Camera]:
        async with info.context.reading() as session:
            found = await queries.cameras(session=session)
        return [forward(Camera, c, aggregating_batches=c.aggregating) for c in found]

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="A detection (its `enrichments`: every record, oldest first); null if unknown.",
    )
    async def detection(self, info: Info, id: int) -> Detection | None:
        return await or_null(
            info, lambda s: queries.get_detection(session=s, detection_id=id), Detection.of
        )

    @strawberry.field(permission_classes=[CanReadPlatform], description="Null if unknown.")
    async def enrichment(self, info: Info, id: int) -> Enrichment | None:
        return await or_null(
            info, lambda s: queries.get_enrichment(session=s, enrichment_id=id), Enrichment.of
        )

    @strawberry.field(permission_classes=[CanReadPlatform], extensions=[Paged(BatchFilter)])
    async def batches(self, info: Info, window: Slice) -> Connection[Batch]:
        return await connection(info, window, BATCHES, window.filter.to_service())

    @strawberry.field(permission_classes=[CanReadPlatform], description="Null if unknown.")
    async def batch(self, info: Info, batch_id: str) -> Batch | None:
        return await or_null(
            info, lambda s: queries.get_batch(session=s, batch_id=batch_id), Batch.of
        )

    @strawberry.field(permission_classes=[CanReadPlatform], description="Batches collecting now.")
    async def active_batches(self, info: Info, camera_id: str | None = None) -> list[Batch]:
        async with info.context.reading() as session:
            rows = await queries.active_batches(session=session, camera_id=camera_id)
        return [Batch.of(r) for r in rows]

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def batch_stats(self, info: Info) -> BatchStats:
        async with info.context.reading() as session:
            s = await queries.batch_stats(session=session)
        return BatchStats(**s.__dict__)

    @strawberry.field(permission_classes=[CanReadPlatform], extensions=[Paged(EnrichmentFilter)])
    async def enrichments(self, info: Info, window: Slice) -> Connection[Enrichment]:
        return await connection(info, window, ENRICHMENTS, window.filter.to_service())

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def enrichment_stats(self, info: Info) -> EnrichmentStats:
        async with info.context.reading() as session:
            s = await queries.enrichment_stats(session=session)
        return EnrichmentStats(**s.__dict__)

    @strawberry.field(permission_classes=[CanReadPlatform], description="Dead letters per queue.")
    async def dlq_stats(self, info: Info) -> DlqStats:
        return await load_dlq_stats(info)

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="A queue's dead letters, oldest first (`queue`: dlq:<queue> or <queue>).",
    )
    async def dlq_jobs(
        self, info: Info, queue: str, start: int = 0, limit: int = 100
    ) -> list[DlqJob]:
        if not 0 <= start <= dlq.MAX_START or not 1 <= limit <= LIMIT_MAX:
            raise user_error(
                f"start must be between 0 and {dlq.MAX_START} and limit between 1 and {LIMIT_MAX}"
            )
        async with info.context.reading() as session:
            try:
                name = await dlq_queue(info, session, queue)
            except NotFound as exc:
                raise user_error(exc.message, "NOT_FOUND") from None
            dead = await dlq.list_dead(session=session, queue=name, start=start, limit=limit)
        return [
            forward(
                DlqJob,
                d,
                task_id=strawberry.ID(str(d.task.id)),
                queue_name=name,
                original_job=cast(JSON, d.task.input),
                attempt_count=d.task.attempts,
            )
            for d in dead
        ]

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def circuit_breakers(self, info: Info) -> list[CircuitBreaker]:
        found = await breakers_of(info).states(configured_breakers(info))
        return [CircuitBreaker.of(b) for b in found]

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def system_health(self, info: Info) -> SystemHealth:
        state = info.context.state
        found = await state.health.current()

        watcher = await quarantine.watcher_report(state.redis)
        return SystemHealth(
            status=found.status,
            checks=[forward(HealthCheck, c, name=n) for n, c in found.checks.items()],
            models=[forward(HealthCheck, c, name=n) for n, c in found.models.items()],
            watcher=CameraWatcher(**{**watcher, "files": cast(JSON, watcher["files"])}),
        )
