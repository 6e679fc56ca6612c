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

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import TaskCounter, TaskRollup, WorkflowRollup

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


# The read statements are text, built once: on a path this short, constructing and compiling
# SQL expressions cost more than PostgreSQL spends answering them.
TASK_COUNTS = text(
    """
SELECT queue, status, tenant, task_type, provider, model, since_reset, sum(tasks),
  sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(latency_ms_sum), sum(latencies),
  sum(generation_ms_sum)
FROM task_counters
WHERE (CAST(:tenant AS text) IS NULL OR tenant = :tenant)
  AND (CAST(:task_type AS text) IS NULL OR task_type = :task_type)
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
)


async def task_counts(
    *, session: AsyncSession, tenant_id: str | None = None, task_type: str | None = None
) -> list[Count]:
    """Per key, summed over shards; keys with nothing left are left out."""
    rows = await session.execute(TASK_COUNTS, {"tenant": tenant_id, "task_type": task_type})
    out = []
    for q, st, t, tt, p, m, since, n, tin, tout, cost, lat, lats, gen in rows.all():
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


def _window(since: datetime) -> tuple[datetime, datetime]:
    """The buckets wholly after `since`'s minute: minutes from the first returned instant up
    to the second (the next full hour), hours from there."""
    first_minute = since.replace(second=0, microsecond=0) + timedelta(minutes=1)
    first_hour = first_minute.replace(minute=0)
    if first_hour < first_minute:
        first_hour += timedelta(hours=1)
    return first_minute, first_hour


# Rows created since two instants (a and b): whole buckets from the rollups, each window's
# partial first minute counted exactly from the rows (an index range of at most a minute).
CREATED = """
SELECT
  (SELECT coalesce(sum({amount}), 0)
   FROM {rollups} WHERE {kind} ((grain = 'm' AND bucket >= :ma AND bucket < :ha)
     OR (grain = 'h' AND bucket >= :ha))
     AND (CAST(:tenant AS text) IS NULL OR tenant = :tenant)),
  (SELECT coalesce(sum({amount}), 0)
   FROM {rollups} WHERE {kind} ((grain = 'm' AND bucket >= :mb AND bucket < :hb)
     OR (grain = 'h' AND bucket >= :hb))
     AND (CAST(:tenant AS text) IS NULL OR tenant = :tenant)),
  (SELECT count(*) FROM {rows} WHERE created_at >= :sa AND created_at < :ma
     AND (CAST(:tenant AS text) IS NULL OR origin_tenant_id = :tenant)),
  (SELECT count(*) FROM {rows} WHERE created_at >= :sb AND created_at < :mb
     AND (CAST(:tenant AS text) IS NULL OR origin_tenant_id = :tenant))
"""
TASKS_CREATED = text(
    CREATED.format(amount="tasks", rollups="task_rollups", rows="tasks", kind="kind = 'c' AND")
)
WORKFLOWS_CREATED = text(
    CREATED.format(amount="workflows", rollups="workflow_rollups", rows="workflows", kind="")
)


async def _created(
    session: AsyncSession, stmt: Any, since: tuple[datetime, datetime], tenant_id: str | None
) -> tuple[int, int]:
    (ma, ha), (mb, hb) = _window(since[0]), _window(since[1])
    params = {"sa": since[0], "sb": since[1], "ma": ma, "ha": ha, "mb": mb, "hb": hb}
    whole_a, whole_b, edge_a, edge_b = (
        await session.execute(stmt, {**params, "tenant": tenant_id})
    ).one()
    return int(whole_a) + int(edge_a), int(whole_b) + int(edge_b)


async def created_since(
    *, session: AsyncSession, since: tuple[datetime, datetime], tenant_id: str | None = None
) -> tuple[int, int]:
    """Tasks (that still exist) created since each of two instants, exactly."""
    return await _created(session, TASKS_CREATED, since, tenant_id)


@dataclass(frozen=True)
class WorkflowCounts:
    by_status: dict[str, int]
    steps: int
    created: tuple[int, int]  # since each of the two instants asked for


WORKFLOW_COUNTS = text(
    """
SELECT status, sum(workflows), sum(steps) FROM workflow_counters
WHERE CAST(:tenant AS text) IS NULL OR tenant = :tenant GROUP BY status
"""
)


async def workflow_counts(
    *, session: AsyncSession, since: tuple[datetime, datetime], tenant_id: str | None = None
) -> WorkflowCounts:
    rows = (await session.execute(WORKFLOW_COUNTS, {"tenant": tenant_id})).all()
    return WorkflowCounts(
        by_status={st: int(n) for st, n, _ in rows if n},
        steps=sum(int(steps) for _, _, steps in rows),
        created=await _created(session, WORKFLOWS_CREATED, since, tenant_id),
    )


@dataclass
class Recent:
    started: int = 0
    wait_ms_sum: float = 0.0
    completed: int = 0


RECENT = text(
    """
SELECT queue, sum(tasks) FILTER (WHERE kind = 's'), sum(wait_ms_sum) FILTER (WHERE kind = 's'),
  sum(tasks) FILTER (WHERE kind = 'f' AND status = 'COMPLETED')
FROM task_rollups
WHERE kind IN ('s', 'f') AND grain = 'm' AND bucket >= :since
  AND (CAST(:tenant AS text) IS NULL OR tenant = :tenant)
GROUP BY queue
"""
)


async def recent_by_queue(
    *, session: AsyncSession, since: datetime, tenant_id: str | None = None
) -> dict[str, Recent]:
    """Per queue: tasks started since `since` (with their summed wait) and completed since,
    to the minute."""
    params = {"since": since.replace(second=0, microsecond=0), "tenant": tenant_id}
    return {
        q: Recent(int(s or 0), float(w or 0.0), int(d or 0))
        for q, s, w, d in (await session.execute(RECENT, params)).all()
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
    Runs in the transaction that moved the marker: its row lock orders it after every writer
    that read the old marker (only those hold `since_reset` rows), and the rows land in shard
    0, which no writer's trigger touches."""
    counted = "SELECT ctid FROM task_counters WHERE since_reset"
    await session.execute(text(_FOLD.format(moved=counted, since_reset="false")))


async def compact_counters(*, session: AsyncSession) -> int:
    """Fold the connections' rows into shard 0, so reads stay a few rows however many
    connections write. A row a transaction holds is skipped, never waited for; a writer may
    wait for this one short statement, which itself waits on no writer."""
    # Ordered with clearing the statistics (which folds `since_reset` rows) by the marker.
    await session.execute(text("SELECT 1 FROM llm_stats_state WHERE id = 1 FOR SHARE"))
    gone = _FOLDABLE.format(table="task_counters")
    result = await session.execute(text(_FOLD.format(moved=gone, since_reset="since_reset")))
    moved = await session.execute(text(_FOLD_WORKFLOWS))
    return int(result.rowcount or 0) + int(moved.rowcount or 0)  # type: ignore[attr-defined]


# Every row outside shard 0 that no transaction holds: a connection's rows are folded in
# once it is idle (it writes a fresh row on its next change), so the table stays about one
# row per key however many connections write.
_FOLDABLE = """SELECT ctid FROM {table} WHERE shard <> 0 FOR UPDATE SKIP LOCKED"""

_FOLD = """
WITH moved AS (
  DELETE FROM task_counters WHERE ctid IN ({moved}) RETURNING *)
INSERT INTO task_counters AS c
SELECT queue, status, tenant, task_type, provider, model, {since_reset}, 0, sum(tasks),
  sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(latency_ms_sum), sum(latencies),
  sum(generation_ms_sum)
FROM moved GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
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

_FOLD_WORKFLOWS = f"""
WITH moved AS (
  DELETE FROM workflow_counters WHERE ctid IN ({_FOLDABLE.format(table="workflow_counters")})
  RETURNING *)
INSERT INTO workflow_counters AS c
SELECT status, tenant, 0, sum(workflows), sum(steps) FROM moved
GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (status, tenant, shard) DO UPDATE SET
  workflows = c.workflows + EXCLUDED.workflows, steps = c.steps + EXCLUDED.steps
"""


async def queued_of(*, session: AsyncSession, tenant: str) -> int:
    """The tenant's QUEUED tasks now, from the maintained counters (every shard)."""
    stmt = select(func.coalesce(func.sum(TaskCounter.tasks), 0)).where(
        TaskCounter.tenant == tenant, TaskCounter.status == "QUEUED"
    )
    return int(await session.scalar(stmt) or 0)
