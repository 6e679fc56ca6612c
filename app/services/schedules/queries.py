"""Reading schedules and their runs, within the caller's tenant."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Schedule, ScheduleFire
from app.services.rows import of_tenant
from app.services.schedules.cron import next_after, zone

MAX_LISTED = 1000
MAX_RUNS = 100


async def list_schedules(
    *, session: AsyncSession, tenant_id: str | None = None, limit: int = MAX_LISTED
) -> list[Schedule]:
    stmt = of_tenant(select(Schedule), Schedule.tenant_id, tenant_id)
    stmt = stmt.order_by(Schedule.created_at.desc(), Schedule.id).limit(min(limit, MAX_LISTED))
    return list((await session.execute(stmt)).scalars())


async def runs_of(
    *, session: AsyncSession, schedule_id: uuid.UUID, limit: int = 20
) -> list[ScheduleFire]:
    """Its fires, newest first (the schedule was read within the caller's tenant)."""
    stmt = (
        select(ScheduleFire)
        .where(ScheduleFire.schedule_id == schedule_id)
        .order_by(ScheduleFire.fire_time.desc(), ScheduleFire.id.desc())
        .limit(min(limit, MAX_RUNS))
    )
    return list((await session.execute(stmt)).scalars())


def next_fire_times(schedule: Schedule, n: int = 5) -> list[datetime]:
    """Its next `n` ticks from the one it waits for (none while paused)."""
    if schedule.paused or schedule.next_fire_at is None:
        return []
    first = schedule.next_fire_at
    return [first, *next_after(schedule.cron, zone(schedule.timezone), first, n - 1)]
