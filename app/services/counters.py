"""Reading the maintained task counters and rollups (migration 0014): figures that would
otherwise scan the tasks table, in a few rows whatever the number of tasks.

Counts of tasks created in a window are exact (whole minutes and hours from the rollups, the
window's first partial minute from the rows); the last hour's started and completed figures
are to the minute: a window starting at 10:17:40 reads from 10:17:00."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.db.models import (
    Task,
    TaskCounter,
    TaskRollup,
    Workflow,
    WorkflowCounter,
    WorkflowRollup,
)

ROLLUP_HOURS = 25  # how far back the triggers keep rollups (the longest window is 24 h)


@dataclass(frozen=True)
class Count:
    queue: str
    status: str
    tenant_id: str | None
    task_type: str
    provider: str | None
    model: str | None
    since_reset: bool
    tasks: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms_sum: float
    latencies: int
    generation_ms_sum: float


async def task_counts(
    *, session: AsyncSession, tenant_id: str | None = None, task_type: str | None = None
) -> list[Count]:
    """Per key, summed over shards; keys with nothing left are left out."""
    c = TaskCounter
    keys = (c.queue, c.status, c.tenant, c.task_type, c.provider, c.model, c.since_reset)
    stmt = select(
        *keys,
        func.sum(c.tasks),
        func.sum(c.input_tokens),
        func.sum(c.output_tokens),
        func.sum(c.cost_usd),
        func.sum(c.latency_ms_sum),
        func.sum(c.latencies),
        func.sum(c.generation_ms_sum),
    ).group_by(*keys)
    if tenant_id is not None:
        stmt = stmt.where(c.tenant == tenant_id)
    if task_type is not None:
        stmt = stmt.where(c.task_type == task_type)
    out = []
    for q, st, t, tt, p, m, since, n, tin, tout, cost, lat, lats, gen in (
        await session.execute(stmt)
    ).all():
        if not (n or tin or tout or cost or lats):
            continue
        out.append(
            Count(
                queue=q,
                status=st,
                tenant_id=t or None,
                task_type=tt,
                provider=p or None,
                model=m or None,
                since_reset=bool(since),
                tasks=int(n),
                input_tokens=int(tin),
                output_tokens=int(tout),
                cost_usd=round(float(cost), 8),
                latency_ms_sum=float(lat),
                latencies=int(lats),
                generation_ms_sum=float(gen),
            )
        )
    return out


def sum_by(counts: Iterable[Count], key: str) -> dict[str, int]:
    """Tasks per value of one dimension (`status`, `queue`, ...), None values left out."""
    out: dict[str, int] = {}
    for c in counts:
        value = getattr(c, key)
        if value is not None:
            out[str(value)] = out.get(str(value), 0) + c.tasks
    return out


def _next_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _window(rollup: Any, since: datetime) -> ColumnElement[bool]:
    """The buckets wholly after `since`'s minute: minutes up to the next full hour, then hours."""
    first_minute = _next_minute(since)
    first_hour = first_minute.replace(minute=0)
    if first_hour < first_minute:
        first_hour += timedelta(hours=1)
    return or_(
        and_(rollup.grain == "m", rollup.bucket >= first_minute, rollup.bucket < first_hour),
        and_(rollup.grain == "h", rollup.bucket >= first_hour),
    )


async def _created_since(
    session: AsyncSession,
    *,
    rollup: Any,
    amount: Any,
    rows: Any,
    since: list[datetime],
    tenant_id: str | None,
    where: tuple[ColumnElement[bool], ...] = (),
) -> list[int]:
    """Rows (that still exist) created since each instant: whole buckets from the rollups,
    the partial first minute counted exactly (an index range of at most one minute)."""
    stmt = select(
        *(func.coalesce(func.sum(amount).filter(_window(rollup, s)), 0) for s in since)
    ).where(*where, rollup.bucket >= min(since).replace(second=0, microsecond=0))
    if tenant_id is not None:
        stmt = stmt.where(rollup.tenant == tenant_id)
    whole = (await session.execute(stmt)).one()
    edges = select(
        *(
            func.count().filter(rows.created_at >= s, rows.created_at < _next_minute(s))
            for s in since
        )
    ).where(or_(*(and_(rows.created_at >= s, rows.created_at < _next_minute(s)) for s in since)))
    if tenant_id is not None:
        edges = edges.where(rows.origin_tenant_id == tenant_id)
    partial = (await session.execute(edges)).one()
    return [int(w) + int(p) for w, p in zip(whole, partial, strict=True)]


async def created_since(
    *, session: AsyncSession, since: list[datetime], tenant_id: str | None = None
) -> list[int]:
    """Tasks created since each instant (exact)."""
    r = TaskRollup
    return await _created_since(
        session,
        rollup=r,
        amount=r.tasks,
        rows=Task,
        since=since,
        tenant_id=tenant_id,
        where=(r.kind == "c",),
    )


@dataclass(frozen=True)
class WorkflowCounts:
    by_status: dict[str, int]
    steps: int
    created: list[int]  # since each of the instants asked for


async def workflow_counts(
    *, session: AsyncSession, since: list[datetime], tenant_id: str | None = None
) -> WorkflowCounts:
    c = WorkflowCounter
    stmt = select(c.status, func.sum(c.workflows), func.sum(c.steps)).group_by(c.status)
    if tenant_id is not None:
        stmt = stmt.where(c.tenant == tenant_id)
    rows = (await session.execute(stmt)).all()
    created = await _created_since(
        session,
        rollup=WorkflowRollup,
        amount=WorkflowRollup.workflows,
        rows=Workflow,
        since=since,
        tenant_id=tenant_id,
    )
    return WorkflowCounts(
        by_status={st: int(n) for st, n, _ in rows if n},
        steps=sum(int(steps) for _, _, steps in rows),
        created=created,
    )


@dataclass
class Recent:
    started: int = 0
    wait_ms_sum: float = 0.0
    completed: int = 0


async def recent_by_queue(
    *, session: AsyncSession, since: datetime, tenant_id: str | None = None
) -> dict[str, Recent]:
    """Per queue: tasks started since `since` (with their summed wait) and completed since."""
    r = TaskRollup
    stmt = (
        select(
            r.queue,
            func.sum(r.tasks).filter(r.kind == "s"),
            func.sum(r.wait_ms_sum).filter(r.kind == "s"),
            func.sum(r.tasks).filter(r.kind == "f", r.status == "COMPLETED"),
        )
        .where(r.grain == "m", r.bucket >= since.replace(second=0, microsecond=0))
        .group_by(r.queue)
    )
    if tenant_id is not None:
        stmt = stmt.where(r.tenant == tenant_id)
    return {
        q: Recent(int(s or 0), float(w or 0.0), int(d or 0))
        for q, s, w, d in (await session.execute(stmt)).all()
    }


async def prune_rollups(*, session: AsyncSession, now: datetime) -> int:
    """Drop buckets older than any window reads (the triggers no longer touch them)."""
    cut = now - timedelta(hours=ROLLUP_HOURS + 1)
    pruned = 0
    for rollup in (TaskRollup, WorkflowRollup):
        result = await session.execute(delete(rollup).where(rollup.bucket < cut))
        pruned += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return pruned


async def fold_since_reset(*, session: AsyncSession) -> None:
    """After the LLM statistics' marker moved: every counted finished task now lies before it.
    Runs in the transaction that moved the marker (whose row lock orders it after every
    writer that read the old marker)."""
    await session.execute(FOLD)


FOLD = text(
    """
WITH moved AS (DELETE FROM task_counters WHERE since_reset RETURNING *)
INSERT INTO task_counters AS c
SELECT queue, status, tenant, task_type, provider, model, false, shard, sum(tasks),
  sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(latency_ms_sum), sum(latencies),
  sum(generation_ms_sum)
FROM moved GROUP BY 1, 2, 3, 4, 5, 6, 8 ORDER BY 1, 2, 3, 4, 5, 6, 8
ON CONFLICT (queue, status, tenant, task_type, provider, model, since_reset, shard)
DO UPDATE SET
  tasks = c.tasks + EXCLUDED.tasks,
  input_tokens = c.input_tokens + EXCLUDED.input_tokens,
  output_tokens = c.output_tokens + EXCLUDED.output_tokens,
  cost_usd = c.cost_usd + EXCLUDED.cost_usd,
  latency_ms_sum = c.latency_ms_sum + EXCLUDED.latency_ms_sum,
  latencies = c.latencies + EXCLUDED.latencies,
  generation_ms_sum = c.generation_ms_sum + EXCLUDED.generation_ms_sum
"""
)
