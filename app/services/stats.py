"""Aggregate task statistics, per-queue figures and worker capacity, computed from PostgreSQL
(the truth about tasks) and the heartbeats in Redis (the truth about workers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task
from app.services.heartbeats import WorkerBeat, live_workers
from app.services.lifecycle import TaskStatus


@dataclass
class AggregateStats:
    total_tasks: int
    by_status: dict[str, int]
    by_provider: dict[str, int]
    by_task_type: dict[str, int]
    tasks_last_hour: int
    tasks_last_24h: int


@dataclass
class QueueFigures:
    name: str
    depth: int = 0
    active_workers: int = 0
    active_tasks: int = 0
    reserved_tasks: int = 0
    avg_wait_time_ms: float | None = None
    tasks_completed_last_hour: int = 0


@dataclass
class QueueOverview:
    queues: list[QueueFigures]
    total_pending: int
    total_active: int
    timestamp: datetime


@dataclass
class WorkerOverview:
    workers: list[WorkerBeat]
    total_workers: int
    total_capacity: int
    total_active: int
    total_utilization_pct: float
    workers_at_capacity: int
    timestamp: datetime


@dataclass
class WorkerHealth:
    healthy: bool
    total_workers: int
    workers_with_capacity: int
    queues_with_workers: list[str] = field(default_factory=list)
    queues_without_workers: list[str] = field(default_factory=list)
    timestamp: datetime = field(default_factory=utcnow)


def _scope(
    stmt: Any,
    tenant_id: str | None,
    origin_instance: str | None,
    origin_zone: str | None,
) -> Any:
    if tenant_id is not None:
        stmt = stmt.where(Task.origin_tenant_id == tenant_id)
    if origin_instance is not None:
        stmt = stmt.where(Task.origin_instance == origin_instance)
    if origin_zone is not None:
        stmt = stmt.where(Task.origin_zone == origin_zone)
    return stmt


async def aggregate_stats(
    *,
    session: AsyncSession,
    tenant_id: str | None = None,
    origin_instance: str | None = None,
    origin_zone: str | None = None,
) -> AggregateStats:
    now = utcnow()

    async def grouped(column: object) -> dict[str, int]:
        stmt = _scope(
            select(column, func.count()).group_by(column),  # type: ignore[call-overload]
            tenant_id,
            origin_instance,
            origin_zone,
        )
        return {str(k): int(n) for k, n in (await session.execute(stmt)).all() if k is not None}

    by_status = await grouped(Task.status)
    by_provider = await grouped(Task.provider)
    by_task_type = await grouped(Task.task_type)
    recent = _scope(
        select(
            func.count().filter(Task.created_at >= now - timedelta(hours=1)),
            func.count().filter(Task.created_at >= now - timedelta(hours=24)),
        ).select_from(Task),
        tenant_id,
        origin_instance,
        origin_zone,
    )
    last_hour, last_day = (await session.execute(recent)).one()
    return AggregateStats(
        total_tasks=sum(by_status.values()),
        by_status=by_status,
        by_provider=by_provider,
        by_task_type=by_task_type,
        tasks_last_hour=int(last_hour),
        tasks_last_24h=int(last_day),
    )


async def queue_overview(
    *, session: AsyncSession, redis: Redis, known_queues: list[str], tenant_id: str | None = None
) -> QueueOverview:
    now = utcnow()
    hour_ago = now - timedelta(hours=1)
    stmt = (
        select(
            Task.queue,
            func.count().filter(Task.status == TaskStatus.QUEUED),
            func.count().filter(Task.status == TaskStatus.RUNNING),
            func.count().filter(Task.status == TaskStatus.QUEUED, Task.next_attempt_at > now),
            func.avg(
                case(
                    (
                        Task.started_at >= hour_ago,
                        func.extract("epoch", Task.started_at - Task.created_at) * 1000,
                    ),
                    else_=None,
                )
            ),
            func.count().filter(Task.status == TaskStatus.COMPLETED, Task.completed_at >= hour_ago),
        )
        .where(
            (Task.status.in_([TaskStatus.QUEUED, TaskStatus.RUNNING]))
            | (Task.updated_at >= hour_ago)
        )
        .group_by(Task.queue)
    )
    if tenant_id is not None:
        stmt = stmt.where(Task.origin_tenant_id == tenant_id)
    figures: dict[str, QueueFigures] = {q: QueueFigures(name=q) for q in known_queues}
    for name, depth, active, reserved, avg_wait, done in (await session.execute(stmt)).all():
        figures[name] = QueueFigures(
            name=name,
            depth=int(depth),
            active_tasks=int(active),
            reserved_tasks=int(reserved),
            avg_wait_time_ms=round(float(avg_wait), 2) if avg_wait is not None else None,
            tasks_completed_last_hour=int(done),
        )
    for worker in await live_workers(redis):
        for q in worker.queues:
            figures.setdefault(q, QueueFigures(name=q)).active_workers += 1
    queues = sorted(figures.values(), key=lambda f: f.name)
    return QueueOverview(
        queues=queues,
        total_pending=sum(q.depth for q in queues),
        total_active=sum(q.active_tasks for q in queues),
        timestamp=now,
    )


async def worker_overview(*, redis: Redis) -> WorkerOverview:
    workers = await live_workers(redis)
    capacity = sum(w.concurrency for w in workers)
    active = sum(w.active for w in workers)
    return WorkerOverview(
        workers=workers,
        total_workers=len(workers),
        total_capacity=capacity,
        total_active=active,
        total_utilization_pct=round(active / capacity * 100, 2) if capacity else 0.0,
        workers_at_capacity=sum(1 for w in workers if w.active >= w.concurrency),
        timestamp=utcnow(),
    )


async def worker_health(*, redis: Redis, known_queues: list[str]) -> WorkerHealth:
    workers = await live_workers(redis)
    served = sorted({q for w in workers for q in w.queues})
    with_capacity = sum(1 for w in workers if w.active < w.concurrency)
    return WorkerHealth(
        healthy=with_capacity > 0,
        total_workers=len(workers),
        workers_with_capacity=with_capacity,
        queues_with_workers=served,
        queues_without_workers=sorted(set(known_queues) - set(served)),
        timestamp=utcnow(),
    )


@dataclass
class ServerMetrics:
    total_requests: int
    active_tasks: int
    queue_length: int
    success_rate: float | None
    average_response_time: float | None
    tokens_per_second: float | None
    api_costs: float


async def server_metrics(*, session: AsyncSession, tenant_id: str | None = None) -> ServerMetrics:
    """Seed 003's metrics: counts over all tasks; rates over finished LLM calls."""
    stmt = select(
        func.count(),
        func.count().filter(Task.status == TaskStatus.RUNNING),
        func.count().filter(Task.status == TaskStatus.QUEUED),
        func.count().filter(Task.status == TaskStatus.COMPLETED),
        func.count().filter(Task.status == TaskStatus.FAILED),
        func.avg(Task.latency_ms).filter(Task.status == TaskStatus.COMPLETED),
        func.sum(Task.output_tokens).filter(Task.status == TaskStatus.COMPLETED),
        func.sum(Task.latency_ms).filter(
            Task.status == TaskStatus.COMPLETED, Task.output_tokens > 0
        ),
        func.coalesce(func.sum(Task.cost_usd), 0.0),
    ).select_from(Task)
    if tenant_id is not None:
        stmt = stmt.where(Task.origin_tenant_id == tenant_id)
    total, running, queued, done, failed, avg_latency, out_tokens, gen_ms, cost = (
        await session.execute(stmt)
    ).one()
    finished = int(done) + int(failed)
    return ServerMetrics(
        total_requests=int(total),
        active_tasks=int(running),
        queue_length=int(queued),
        success_rate=round(int(done) / finished * 100, 2) if finished else None,
        average_response_time=round(float(avg_latency) / 1000, 4) if avg_latency else None,
        tokens_per_second=(
            round(float(out_tokens) / (float(gen_ms) / 1000), 2) if out_tokens and gen_ms else None
        ),
        api_costs=round(float(cost), 6),
    )
