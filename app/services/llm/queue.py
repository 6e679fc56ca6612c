"""The LLM queue (seed 000): depth, token and cost totals, drain estimates, the semaphore's
state, listing and cancelling LLM tasks, and clearing statistics.

Totals are derived from the task rows (so they survive restarts and always equal the sum over
tasks); clearing the statistics moves a reset marker and deletes old finished LLM tasks."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import LlmStatsState, Task
from app.kernel.errors import NotFound
from app.services.fleet.heartbeats import live_workers
from app.services.llm import semaphore
from app.services.llm.semaphore import SemaphoreConfig, SemaphoreStats
from app.services.tasks import commands as tasks
from app.services.tasks import counters
from app.services.tasks.lifecycle import FINISHED, TaskStatus

LLM = "llm"
ACTIVE = (TaskStatus.QUEUED.value, TaskStatus.RUNNING.value)
RECENT_DURATIONS = 100  # completed tasks per queue behind the mean duration
# assumed duration of an LLM task before any has completed or run for longer (seconds)
DEFAULT_DURATION_SECONDS = 10.0


@dataclass
class Usage:
    key: str
    tasks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class QueueFigures:
    queue: str
    queued: int = 0
    running: int = 0
    workers: int = 0
    max_depth: int = 100
    depth_percent: float = 0.0
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    total_cost_usd: float = 0.0
    mean_duration_seconds: float | None = None
    # the duration the estimate assumed: the recent mean, else what is known (see _drain_estimates)
    estimate_basis_seconds: float = 0.0
    estimated_seconds: int = 0


@dataclass
class LlmStats:
    queues: list[QueueFigures]
    total_queued: int
    total_cost_usd: float
    total_input_tokens: int
    total_output_tokens: int
    estimated_completion_time_seconds: int
    semaphore: SemaphoreStats
    by_model: list[Usage] = field(default_factory=list)
    by_tenant: list[Usage] = field(default_factory=list)
    reset_at: datetime | None = None

    @property
    def total_tokens(self) -> int:
        return self.total_input_tokens + self.total_output_tokens

    @property
    def estimated_completion_time_human(self) -> str:
        return human_duration(self.estimated_completion_time_seconds)


def human_duration(seconds: int) -> str:
    """45 -> '45s', 150 -> '2m 30s', 3900 -> '1h 5m', 93600 -> '1d 2h'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _scoped(stmt: Any, tenant_id: str | None) -> Any:
    return stmt if tenant_id is None else stmt.where(Task.origin_tenant_id == tenant_id)


async def reset_marker(session: AsyncSession) -> datetime | None:
    row = await session.get(LlmStatsState, 1)
    return row.reset_at if row else None


async def llm_stats(
    *,
    session: AsyncSession,
    redis: Redis,
    config: SemaphoreConfig,
    queues: list[str],
    max_depth: int,
    tenant_id: str | None = None,
) -> LlmStats:
    reset_at = await reset_marker(session)
    figures = {q: QueueFigures(queue=q, max_depth=max_depth) for q in queues}
    by_model: dict[str, Usage] = {}
    by_tenant: dict[str, Usage] = {}
    # The counters split finished LLM tasks at the reset marker (`since_reset`).
    for c in await counters.task_counts(session=session, tenant_id=tenant_id, task_type=LLM):
        f = figures.setdefault(c.queue, QueueFigures(queue=c.queue, max_depth=max_depth))
        if c.status == TaskStatus.QUEUED:
            f.queued += c.tasks
        elif c.status == TaskStatus.RUNNING:
            f.running += c.tasks
        elif c.since_reset:
            f.total_input_tokens += c.input_tokens
            f.total_output_tokens += c.output_tokens
            f.total_cost_usd += c.cost_usd
            for usage, key in (
                (by_model, c.model or "unknown"),
                (by_tenant, c.tenant_id or "platform"),
            ):
                u = usage.setdefault(key, Usage(key=key))
                u.tasks += c.tasks
                u.input_tokens += c.input_tokens
                u.output_tokens += c.output_tokens
                u.cost_usd += c.cost_usd
    for f in figures.values():
        f.total_cost_usd = round(f.total_cost_usd, 6)
    for u in (*by_model.values(), *by_tenant.values()):
        u.cost_usd = round(u.cost_usd, 6)

    serving = await _drain_estimates(session, redis, config, figures, tenant_id)
    sem = await semaphore.stats(redis, config)
    ordered = sorted(figures.values(), key=lambda f: (f.queue not in queues, f.queue))
    for f in ordered:
        f.depth_percent = round(f.queued / f.max_depth * 100, 2)
    total_work = sum(f.queued * f.estimate_basis_seconds for f in ordered)
    # Everything queued drains through the semaphore, on the workers that serve these queues.
    capacity = max(1, min(config.max_concurrent, serving))
    return LlmStats(
        queues=ordered,
        total_queued=sum(f.queued for f in ordered),
        total_cost_usd=round(sum(f.total_cost_usd for f in ordered), 6),
        total_input_tokens=sum(f.total_input_tokens for f in ordered),
        total_output_tokens=sum(f.total_output_tokens for f in ordered),
        estimated_completion_time_seconds=math.ceil(total_work / capacity),
        semaphore=sem,
        by_model=sorted(by_model.values(), key=lambda u: u.key),
        by_tenant=sorted(by_tenant.values(), key=lambda u: u.key),
        reset_at=reset_at,
    )


async def _drain_estimates(
    session: AsyncSession,
    redis: Redis,
    config: SemaphoreConfig,
    figures: dict[str, QueueFigures],
    tenant_id: str | None,
) -> int:
    """queued x recent mean duration / effective concurrency, per queue. Returns the
    concurrency of the distinct live workers serving any of these queues."""
    queues = list(figures)
    means = await _recent_means(session, RECENT_COMPLETED, queues, tenant_id)
    # No history yet (nothing completed): the running tasks' elapsed time is the best guess of
    # a duration, and a queue with neither still has work that takes time.
    elapsed = await _recent_means(
        session, RECENT_RUNNING, [q for q in queues if q not in means], tenant_id
    )
    concurrency: dict[str, int] = {}
    serving = 0
    for worker in await live_workers(redis):
        served = [q for q in worker.queues if q in figures]
        if served:
            serving += worker.concurrency
        for q in served:
            figures[q].workers += 1
            concurrency[q] = concurrency.get(q, 0) + worker.concurrency
    for q, f in figures.items():
        f.mean_duration_seconds = round(means[q], 3) if q in means else None
        guess = means.get(q) or max(elapsed.get(q, 0.0), DEFAULT_DURATION_SECONDS)
        f.estimate_basis_seconds = guess
        effective = max(1, min(config.max_concurrent, concurrency.get(q, 0)))
        f.estimated_seconds = math.ceil(f.queued * guess / effective)
    return serving


# The newest RECENT_DURATIONS tasks of each queue, through the partial indexes of migration
# 0014 (ix_tasks_llm_completed, ix_tasks_llm_running): bounded reads whatever the history.
RECENT_COMPLETED = """
SELECT q.queue, avg(r.seconds) FROM unnest(CAST(:queues AS text[])) AS q (queue)
CROSS JOIN LATERAL (
  SELECT extract(epoch FROM t.completed_at - t.started_at) AS seconds FROM tasks t
  WHERE t.status = 'COMPLETED' AND t.task_type = 'llm' AND t.queue = q.queue
    AND t.completed_at IS NOT NULL AND t.started_at IS NOT NULL {tenant}
  ORDER BY t.completed_at DESC LIMIT :n) r
GROUP BY q.queue
"""
RECENT_RUNNING = """
SELECT q.queue, avg(r.seconds) FROM unnest(CAST(:queues AS text[])) AS q (queue)
CROSS JOIN LATERAL (
  SELECT extract(epoch FROM now() - t.started_at) AS seconds FROM tasks t
  WHERE t.status = 'RUNNING' AND t.task_type = 'llm' AND t.queue = q.queue
    AND t.started_at IS NOT NULL {tenant}
  ORDER BY t.started_at DESC LIMIT :n) r
GROUP BY q.queue
"""


async def _recent_means(
    session: AsyncSession, sql: str, queues: list[str], tenant_id: str | None
) -> dict[str, float]:
    if not queues:
        return {}
    tenant = "" if tenant_id is None else "AND t.origin_tenant_id = :tenant"
    params: dict[str, Any] = {"queues": queues, "n": RECENT_DURATIONS}
    if tenant_id is not None:
        params["tenant"] = tenant_id
    rows = await session.execute(text(sql.format(tenant=tenant)), params)
    return {q: float(m) for q, m in rows.all() if m is not None}


async def active_llm_tasks(
    *, session: AsyncSession, tenant_id: str | None = None, limit: int = 1000
) -> list[Task]:
    stmt = _scoped(
        select(Task)
        .where(Task.task_type == LLM, Task.status.in_(ACTIVE))
        .order_by(Task.priority.desc(), Task.created_at)
        .limit(limit),
        tenant_id,
    )
    return list((await session.execute(stmt)).scalars())


async def get_llm_task(
    *, session: AsyncSession, task_id: uuid.UUID, tenant_id: str | None = None
) -> Task:
    task = await tasks.get_task(session=session, task_id=task_id, tenant_id=tenant_id)
    if task.task_type != LLM:
        raise NotFound(f"LLM task {task_id} not found", field="id")
    return task


async def cancel_llm_task(
    *, session: AsyncSession, task_id: uuid.UUID, tenant_id: str | None = None
) -> Task:
    await get_llm_task(session=session, task_id=task_id, tenant_id=tenant_id)
    return await tasks.cancel_task(session=session, task_id=task_id, tenant_id=tenant_id)


CANCEL_BATCH = 500


async def cancel_all_llm_tasks(
    *, units: Callable[[], AbstractAsyncContextManager[AsyncSession]], tenant_id: str | None = None
) -> int:
    """Cancel every queued LLM task and ask every running one to stop, a bounded batch per
    unit of work (`units` opens one), so locks and effects stay small and a task that
    finished meanwhile is simply not selected: it never fails the call."""
    count = 0
    after: uuid.UUID | None = None
    while True:
        async with units() as session:
            stmt = _scoped(
                select(Task.id).where(Task.task_type == LLM, Task.status.in_(ACTIVE)), tenant_id
            )
            if after is not None:
                stmt = stmt.where(Task.id > after)
            # Locked and still active when selected: each cancel below is a valid transition.
            stmt = stmt.order_by(Task.id).limit(CANCEL_BATCH).with_for_update()
            ids = list((await session.execute(stmt)).scalars())
            for task_id in ids:
                await tasks.cancel_task(session=session, task_id=task_id, tenant_id=tenant_id)
        count += len(ids)
        if len(ids) < CANCEL_BATCH:
            return count
        after = ids[-1]


async def clear_stats(*, session: AsyncSession, redis: Redis, older_than_hours: int) -> int:
    """Reset the totals (now) and delete finished LLM tasks older than the cut-off; queued and
    running tasks are never touched. Returns how many tasks were deleted.

    Moving the marker locks its row first: the counter triggers read it under a share lock,
    so every writer that saw the old marker has committed before the counters are folded."""
    now = utcnow()
    await session.execute(
        pg_insert(LlmStatsState)
        .values(id=1, reset_at=now)
        .on_conflict_do_update(index_elements=["id"], set_={"reset_at": now})
    )
    result = await session.execute(
        delete(Task).where(
            Task.task_type == LLM,
            Task.status.in_([s.value for s in FINISHED]),
            Task.completed_at < now - timedelta(hours=older_than_hours),
        )
    )
    await counters.fold_since_reset(session=session)
    await semaphore.reset_totals(redis)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
