"""Queue, worker and aggregate statistics queries, and the live worker fleet."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.gql.context import Info
from app.gql.forward import forward
from app.gql.permissions import CanRead, CanReadPlatform
from app.gql.throttle import throttled_snapshots
from app.gql.types import QueueStats, TaskStats, Worker, WorkerHealth, WorkerStats
from app.services.fleet import heartbeats, stats


async def load_queue_stats(info: Info) -> QueueStats:
    state = info.context.state
    async with info.context.reading() as session:
        overview = await stats.queue_overview(
            session=session,
            redis=state.redis,
            known_queues=state.settings.queues,
            tenant_id=info.context.tenant_id,
        )
    return QueueStats.of(overview)


async def load_worker_stats(info: Info) -> WorkerStats:
    o = await stats.worker_overview(redis=info.context.state.redis)
    return forward(WorkerStats, o, workers=[Worker.of(w) for w in o.workers])


@strawberry.type
class MonitoringQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def task_stats(
        self, info: Info, origin_instance: str | None = None, origin_zone: str | None = None
    ) -> TaskStats:
        async with info.context.reading() as session:
            s = await stats.aggregate_stats(
                session=session,
                tenant_id=info.context.tenant_id,
                origin_instance=origin_instance,
                origin_zone=origin_zone,
            )
        return TaskStats.of(s)

    @strawberry.field(permission_classes=[CanRead])
    async def queue_stats(self, info: Info) -> QueueStats:
        return await load_queue_stats(info)

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def worker_stats(self, info: Info) -> WorkerStats:
        return await load_worker_stats(info)

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def worker_health(self, info: Info) -> WorkerHealth:
        state = info.context.state
        h = await stats.worker_health(redis=state.redis, known_queues=state.settings.queues)
        return WorkerHealth(**vars(h))


@strawberry.type
class WorkerSubscription:
    @strawberry.subscription(
        permission_classes=[CanReadPlatform],
        description="The worker fleet now, then after heartbeats, starts and clean exits (at most"
        " two snapshots a second), and at least once per heartbeat TTL, so a worker that died"
        " without a word drops out when its heartbeat expires.",
    )
    async def workers_changed(self, info: Info) -> AsyncGenerator[WorkerStats, None]:
        async for snapshot in throttled_snapshots(
            info,
            lambda e: e.kind == heartbeats.WORKER_KIND,
            load_worker_stats,
            platform_kinds=frozenset({heartbeats.WORKER_KIND}),
            every=info.context.state.settings.heartbeat_ttl_seconds,
        ):
            yield snapshot
