"""Reading the maintained task counters (see migration 0007): figures that would otherwise
scan the tasks table, in a few rows whatever the number of tasks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import TaskCounter


@dataclass(frozen=True)
class Count:
    queue: str
    status: str
    tenant_id: str | None
    tasks: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


async def task_counts(*, session: AsyncSession, tenant_id: str | None = None) -> list[Count]:
    """Per (queue, status, tenant), summed over shards; zero rows left out."""
    c = TaskCounter
    stmt = select(
        c.queue,
        c.status,
        c.tenant,
        func.sum(c.tasks),
        func.sum(c.input_tokens),
        func.sum(c.output_tokens),
        func.sum(c.cost_usd),
    ).group_by(c.queue, c.status, c.tenant)
    if tenant_id is not None:
        stmt = stmt.where(c.tenant == tenant_id)
    rows = (await session.execute(stmt)).all()
    return [
        Count(q, st, t or None, int(n), int(tin), int(tout), round(float(cost), 8))
        for q, st, t, n, tin, tout, cost in rows
        if n or tin or tout or cost
    ]
