"""Live pipeline views: new security events, batch changes, DLQ figures, circuit breakers' changes
of state."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from datetime import UTC, datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Batch as BatchRow
from app.db.models import SecurityEvent as EventRow
from app.gql.context import Info
from app.gql.permissions import CanReadPlatform
from app.gql.pipeline.queries import breakers_of, load_dlq_stats
from app.gql.pipeline.types import Batch, CircuitBreaker, DlqStats, SecurityEvent
from app.gql.reads import events_of, live
from app.gql.throttle import throttled_snapshots
from app.platform.events import Event
from app.services.fleet import breakers
from app.services.pipeline import queries


@strawberry.type
class CircuitBreakerChange:
    name: str
    state: str = strawberry.field(description="closed, open or half_open: the state entered")
    previous_state: str | None
    changed_at: datetime
    reset: bool = strawberry.field(description="An operator reset it (else a call's outcome).")
    breaker: CircuitBreaker = strawberry.field(description="Its figures just after the change.")


@strawberry.type
class PipelineSubscription:
    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="Each new security event (optionally of one camera, at or above a score).",
    )
    async def security_events(
        self, info: Info, camera_id: str | None = None, min_risk_score: int | None = None
    ) -> AsyncGenerator[SecurityEvent, None]:
        of_camera = events_of("security_event", camera_id=camera_id)

        def wanted(e: Event) -> bool:
            if not of_camera(e):
                return False
            return min_risk_score is None or int(e.data.get("risk_score", 0)) >= min_risk_score

        def load(session: AsyncSession, event: Event) -> Awaitable[EventRow]:
            return queries.get_event(session=session, event_id=int(event.key))

        async for found in live(info, wanted, load, SecurityEvent.of):
            yield found

    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="A batch each time it opens, grows, closes or gets its event.",
    )
    async def batch_updated(
        self, info: Info, camera_id: str | None = None
    ) -> AsyncGenerator[Batch, None]:
        def load(session: AsyncSession, event: Event) -> Awaitable[BatchRow]:
            return queries.get_batch(session=session, batch_id=event.key)

        async for found in live(info, events_of("batch", camera_id=camera_id), load, Batch.of):
            yield found

    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="DLQ figures now, then after each change (at most two per second).",
    )
    async def dlq_changed(self, info: Info) -> AsyncGenerator[DlqStats, None]:
        def relevant(e: Event) -> bool:
            return e.kind == "dlq" or (e.kind == "task" and e.data.get("status") == "FAILED")

        async for snapshot in throttled_snapshots(
            info, relevant, load_dlq_stats, platform_kinds=frozenset({"dlq"})
        ):
            yield snapshot

    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="Each change of a circuit breaker's state (optionally one service's): opened,"
        " half-open after its recovery timeout (seen by the next call), closed, reset.",
    )
    async def circuit_breaker_changed(
        self, info: Info, name: str | None = None
    ) -> AsyncGenerator[CircuitBreakerChange, None]:
        ctx = info.context
        async with ctx.state.broker.subscribe(events_of(breakers.KIND, key=name)) as sub:
            async for event in sub:
                d = event.data
                found = {b.name: b for b in await breakers_of(info).states([event.key])}
                figures = CircuitBreaker.of(found[event.key])
                figures.state = str(d["state"])  # the state entered, not what it became since
                yield CircuitBreakerChange(
                    name=event.key,
                    state=str(d["state"]),
                    previous_state=d.get("previous_state"),
                    changed_at=datetime.fromtimestamp(int(d["at_ms"]) / 1000, tz=UTC),
                    reset=bool(d.get("reset", False)),
                    breaker=figures,
                )
