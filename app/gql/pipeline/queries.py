"""Pipeline queries: thin resolvers over app.services.pipeline, app.services.dlq and the
breakers."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.pagination import Connection, OrderDirection, Slice, connection
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
from app.services import dlq, health
from app.services.errors import NotFound
from app.services.pipeline import quarantine, queries
from app.services.pipeline.breakers import Breakers
from app.uow import read_only


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
        return queries.EventFilter(
            camera_id=self.camera_id,
            min_risk_score=self.min_risk_score,
            risk_levels=tuple(self.risk_level or ()),
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.input
class BatchFilter:
    camera_id: str | None = None
    status: BatchStatus | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def to_service(self) -> queries.BatchFilter:
        return queries.BatchFilter(
            camera_id=self.camera_id,
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
        return queries.EnrichmentFilter(
            detection_type=self.detection_type,
            camera_id=self.camera_id,
            start_date=self.created_after,
            end_date=self.created_before,
            min_confidence=self.min_confidence,
            event_id=self.event_id,
        )


def user_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


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
    async with read_only(info.context.state.sessionmaker) as session:
        found = await dlq.summary(
            session=session, always=[pipeline.detection_queue, pipeline.analysis_queue]
        )
    return DlqStats(
        queues=[DlqQueue(queue_name=dlq.PREFIX + q, queue=q, count=n) for q, n in found.items()],
        total_count=sum(found.values()),
    )


@strawberry.type
class PipelineQueries:
    @strawberry.field(permission_classes=[CanReadPlatform])
    async def security_events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: SecurityEventFilter | None = None,
        order_by: SecurityEventOrder | None = None,
    ) -> Connection[SecurityEvent]:
        order = order_by or SecurityEventOrder()
        flt = (filter or SecurityEventFilter()).to_service()
        return await connection(
            info,
            Slice(first, after, last, before),
            name="securityEvents",
            order_by=order.field.value,
            descending=order.direction == OrderDirection.DESC,
            scope=flt,
            rows=lambda s, page: queries.list_events(session=s, filter=flt, page=page),
            count=lambda s: queries.count_events(session=s, filter=flt),
            node=lambda row: SecurityEvent(row=row),
        )

    @strawberry.field(permission_classes=[CanReadPlatform], description="Null if unknown.")
    async def security_event(self, info: Info, id: int) -> SecurityEvent | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                return SecurityEvent(row=await queries.get_event(session=session, event_id=id))
            except NotFound:
                return None

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="Every camera that sent an image: counts, the latest, open batches.",
    )
    async def cameras(self, info: Info) -> list[Camera]:
        async with read_only(info.context.state.sessionmaker) as session:
            found = await queries.cameras(session=session)
        return [
            Camera(
                camera_id=c.camera_id,
                images=c.images,
                last_image_at=c.last_image_at,
                aggregating_batches=c.aggregating,
            )
            for c in found
        ]

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="A detection (its `enrichments`: every record, oldest first); null if unknown.",
    )
    async def detection(self, info: Info, id: int) -> Detection | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                return Detection(row=await queries.get_detection(session=session, detection_id=id))
            except NotFound:
                return None

    @strawberry.field(permission_classes=[CanReadPlatform], description="Null if unknown.")
    async def enrichment(self, info: Info, id: int) -> Enrichment | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                row = await queries.get_enrichment(session=session, enrichment_id=id)
            except NotFound:
                return None
        return Enrichment(row=row)

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def batches(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: BatchFilter | None = None,
    ) -> Connection[Batch]:
        flt = (filter or BatchFilter()).to_service()
        return await connection(
            info,
            Slice(first, after, last, before),
            name="batches",
            order_by="started_at",
            descending=True,
            scope=flt,
            rows=lambda s, page: queries.list_batches(session=s, filter=flt, page=page),
            count=lambda s: queries.count_batches(session=s, filter=flt),
            node=lambda row: Batch(row=row),
        )

    @strawberry.field(permission_classes=[CanReadPlatform], description="Null if unknown.")
    async def batch(self, info: Info, batch_id: str) -> Batch | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                return Batch(row=await queries.get_batch(session=session, batch_id=batch_id))
            except NotFound:
                return None

    @strawberry.field(permission_classes=[CanReadPlatform], description="Batches collecting now.")
    async def active_batches(self, info: Info, camera_id: str | None = None) -> list[Batch]:
        async with read_only(info.context.state.sessionmaker) as session:
            rows = await queries.active_batches(session=session, camera_id=camera_id)
        return [Batch(row=r) for r in rows]

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def batch_stats(self, info: Info) -> BatchStats:
        async with read_only(info.context.state.sessionmaker) as session:
            s = await queries.batch_stats(session=session)
        return BatchStats(**s.__dict__)

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def enrichments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: EnrichmentFilter | None = None,
    ) -> Connection[Enrichment]:
        flt = (filter or EnrichmentFilter()).to_service()
        return await connection(
            info,
            Slice(first, after, last, before),
            name="enrichments",
            order_by="created_at",
            descending=True,
            scope=flt,
            rows=lambda s, page: queries.list_enrichments(session=s, filter=flt, page=page),
            count=lambda s: queries.count_enrichments(session=s, filter=flt),
            node=lambda row: Enrichment(row=row),
        )

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def enrichment_stats(self, info: Info) -> EnrichmentStats:
        async with read_only(info.context.state.sessionmaker) as session:
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
        if not 0 <= start <= dlq.MAX_START or not 1 <= limit <= 1000:
            raise user_error(
                f"start must be between 0 and {dlq.MAX_START} and limit between 1 and 1000"
            )
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                name = await dlq_queue(info, session, queue)
            except NotFound as exc:
                raise GraphQLError(exc.message, extensions={"code": "NOT_FOUND"}) from None
            dead = await dlq.list_dead(session=session, queue=name, start=start, limit=limit)
        return [
            DlqJob(
                task_id=strawberry.ID(str(d.task.id)),
                queue_name=name,
                original_job=cast(JSON, d.task.input),
                error=d.error,
                attempt_count=d.task.attempts,
                first_failed_at=d.first_failed_at,
                last_failed_at=d.last_failed_at,
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

        def check(name: str, c: health.Check) -> HealthCheck:
            return HealthCheck(
                name=name, status=c.status, latency_ms=c.latency_ms, detail=cast(JSON, c.detail)
            )

        watcher = await quarantine.watcher_report(state.redis)
        return SystemHealth(
            status=found.status,
            checks=[check(n, c) for n, c in found.checks.items()],
            models=[check(n, c) for n, c in found.models.items()],
            watcher=CameraWatcher(**{**watcher, "files": cast(JSON, watcher["files"])}),
        )
