"""Aggregate task statistics, per-queue figures and worker capacity, computed from PostgreSQL
(the truth about tasks) and the heartbeats in Redis (the truth about workers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task
from app.services.fleet.heartbeats import WorkerBeat, live_workers
from app.services.tasks import counters
from app.services.tasks.lifecycle import TaskStatus


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
    if origin_instance is None and origin_zone is None:
        # the maintained counters and rollups: a few rows whatever the number of tasks
        counts = await counters.task_counts(session=session, tenant_id=tenant_id)
        last_hour, last_day = await counters.created_since(
            session=session,
            since=(now - timedelta(hours=1), now - timedelta(hours=24)),
            tenant_id=tenant_id,
        )
        by_status = counters.sum_by(counts, "status")
        return AggregateStats(
            total_tasks=sum(by_status.values()),
            by_status=by_status,
            by_provider=counters.sum_by(counts, "provider"),
            by_task_type=counters.sum_by(counts, "task_type"),
            tasks_last_hour=last_hour,
            tasks_last_24h=last_day,
        )
    return await _scanned_stats(session, now, tenant_id, origin_instance, origin_zone)


async def _scanned_stats(
    session: AsyncSession,
    now: datetime,
    tenant_id: str | None,
    origin_instance: str | None,
    origin_zone: str | None,
) -> AggregateStats:
    """Scoped to an origin (not a counter dimension): counted over the matching rows."""

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


# Retries waiting out their backoff, through the partial index ix_tasks_retry_wait (its
# predicate written literally, so that a generic plan still matches it).
RETRIES_WAITING = text(
    """
SELECT queue, count(*) FROM tasks
WHERE status = 'QUEUED' AND next_attempt_at IS NOT NULL AND next_attempt_at > :now
  AND (CAST(:tenant AS text) IS NULL OR origin_tenant_id = :tenant)
GROUP BY queue
"""
)


async def queue_overview(
    *, session: AsyncSession, redis: Redis, known_queues: list[str], tenant_id: str | None = None
) -> QueueOverview:
    """Depths from the counters, the last hour from the rollups (to the minute), retries
    waiting out their backoff from a partial index: nothing here reads the task rows."""
    now = utcnow()
    figures: dict[str, QueueFigures] = {q: QueueFigures(name=q) for q in known_queues}
    for c in await counters.task_counts(session=session, tenant_id=tenant_id):
        f = figures.setdefault(c.queue, QueueFigures(name=c.queue))
        if c.status == TaskStatus.QUEUED:
            f.depth += c.tasks
        elif c.status == TaskStatus.RUNNING:
            f.active_tasks += c.tasks
    params = {"now": now, "tenant": tenant_id}
    for name, n in (await session.execute(RETRIES_WAITING, params)).all():
        figures.setdefault(name, QueueFigures(name=name)).reserved_tasks = int(n)
    recent = await counters.recent_by_queue(
        session=session, since=now - timedelta(hours=1), tenant_id=tenant_id
    )
    for name, r in recent.items():
        f = figures.setdefault(name, QueueFigures(name=name))
        f.avg_wait_time_ms = round(r.wait_ms_sum / r.started, 2) if r.started > 0 else None
        f.tasks_completed_last_hour = r.completed
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


def chat_model(provider_name: str, chat_model_name: str) -> str:
    """The model seed 003's `llm_status` names: the configured one, or the simulated provider's."""
    return chat_model_name if provider_name == "openai" else "simulated-chat"


async def server_metrics(*, session: AsyncSession, tenant_id: str | None = None) -> ServerMetrics:
    """Seed 003's metrics: counts over all tasks; rates over finished LLM calls (counters)."""
    counts = await counters.task_counts(session=session, tenant_id=tenant_id)

    def total(status: str, attr: str = "tasks") -> float:
        return float(sum(getattr(c, attr) for c in counts if c.status == status))

    done, failed = int(total(TaskStatus.COMPLETED)), int(total(TaskStatus.FAILED))
    latencies = total(TaskStatus.COMPLETED, "latencies")
    latency_sum = total(TaskStatus.COMPLETED, "latency_ms_sum")
    out_tokens = total(TaskStatus.COMPLETED, "output_tokens")
    gen_ms = total(TaskStatus.COMPLETED, "generation_ms_sum")
    finished = done + failed
    return ServerMetrics(
        total_requests=sum(c.tasks for c in counts),
        active_tasks=int(total(TaskStatus.RUNNING)),
        queue_length=int(total(TaskStatus.QUEUED)),
        success_rate=round(done / finished * 100, 2) if finished else None,
        average_response_time=(
            round(latency_sum / latencies / 1000, 4) if latencies and latency_sum else None
        ),
        tokens_per_second=(
            round(out_tokens / (gen_ms / 1000), 2) if out_tokens and gen_ms else None
        ),
        api_costs=round(sum(c.cost_usd for c in counts), 6),
    )
