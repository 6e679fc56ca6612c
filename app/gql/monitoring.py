"""Queue, worker and aggregate statistics queries."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.permissions import CanRead, CanReadPlatform
from app.gql.types import QueueStats, TaskStats, Worker, WorkerHealth, WorkerStats
from app.services import stats
from app.uow import read_only


async def load_queue_stats(info: Info) -> QueueStats:
    state = info.context.state
    async with read_only(state.sessionmaker) as session:
        overview = await stats.queue_overview(
            session=session,
            redis=state.redis,
            known_queues=state.settings.queues,
            tenant_id=info.context.tenant_id,
        )
    return QueueStats.from_overview(overview)


@strawberry.type
class MonitoringQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def task_stats(
        self, info: Info, origin_instance: str | None = None, origin_zone: str | None = None
    ) -> TaskStats:
        async with read_only(info.context.state.sessionmaker) as session:
            s = await stats.aggregate_stats(
                session=session,
                tenant_id=info.context.tenant_id,
                origin_instance=origin_instance,
                origin_zone=origin_zone,
            )
        return TaskStats.from_stats(s)

    @strawberry.field(permission_classes=[CanRead])
    async def queue_stats(self, info: Info) -> QueueStats:
        return await load_queue_stats(info)

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def worker_stats(self, info: Info) -> WorkerStats:
        o = await stats.worker_overview(redis=info.context.state.redis)
        return WorkerStats(
            workers=[Worker.from_beat(w) for w in o.workers],
            total_workers=o.total_workers,
            total_capacity=o.total_capacity,
            total_active=o.total_active,
            total_utilization_pct=o.total_utilization_pct,
            workers_at_capacity=o.workers_at_capacity,
            timestamp=o.timestamp,
        )

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def worker_health(self, info: Info) -> WorkerHealth:
        state = info.context.state
        h = await stats.worker_health(redis=state.redis, known_queues=state.settings.queues)
        return WorkerHealth(**vars(h))
