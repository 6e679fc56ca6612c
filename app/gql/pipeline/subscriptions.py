"""Live pipeline views: new security events, batch changes, DLQ figures."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.events import Event
from app.gql.context import Info
from app.gql.permissions import CanReadPlatform
from app.gql.pipeline.queries import load_dlq_stats
from app.gql.pipeline.types import Batch, DlqStats, SecurityEvent
from app.gql.throttle import throttled_snapshots
from app.services.errors import NotFound
from app.services.pipeline import queries
from app.uow import read_only


@strawberry.type
class PipelineSubscription:
    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="Each new security event (optionally of one camera, at or above a score).",
    )
    async def security_events(
        self, info: Info, camera_id: str | None = None, min_risk_score: int | None = None
    ) -> AsyncGenerator[SecurityEvent, None]:
        def wanted(e: Event) -> bool:
            return (
                e.kind == "security_event"
                and (camera_id is None or e.data.get("camera_id") == camera_id)
                and (min_risk_score is None or int(e.data.get("risk_score", 0)) >= min_risk_score)
            )

        ctx = info.context
        async with ctx.state.broker.subscribe(wanted) as sub:
            async for event in sub:
                async with read_only(ctx.state.sessionmaker) as session:
                    try:
                        row = await queries.get_event(session=session, event_id=int(event.key))
                    except NotFound:
                        continue
                yield SecurityEvent(row=row)

    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="A batch each time it opens, grows, closes or gets its event.",
    )
    async def batch_updated(
        self, info: Info, camera_id: str | None = None
    ) -> AsyncGenerator[Batch, None]:
        def wanted(e: Event) -> bool:
            return e.kind == "batch" and (camera_id is None or e.data.get("camera_id") == camera_id)

        ctx = info.context
        async with ctx.state.broker.subscribe(wanted) as sub:
            async for event in sub:
                async with read_only(ctx.state.sessionmaker) as session:
                    try:
                        row = await queries.get_batch(session=session, batch_id=event.key)
                    except NotFound:
                        continue
                yield Batch(row=row)

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
