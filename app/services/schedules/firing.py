"""The schedule ticker's pass: each due schedule's ticks up to now, fired as its catch-up
policy says, its next tick moved on. Every worker runs passes; a schedule's row is locked by
the pass that takes it (others skip it) and each tick is claimed by a unique row, so a tick
runs at most once whatever the number of workers, restarts or a Redis flush."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Schedule
from app.services.schedules.commands import Outcome, ScheduleRules, changed, claim, start
from app.services.schedules.cron import MAX_CATCH_UP, CatchUp, next_after, ticks, zone

# schedules one pass looks at; the ticks of one schedule it walks at most (a minutely schedule
# down for a week has 10,080: the oldest are dropped, not fired)
PASS_SIZE = 100
MAX_WALK = 20_000


async def fire_due(session: AsyncSession, *, now: datetime, rules: ScheduleRules) -> int:
    """One pass at `now` (the platform clock); the number of runs started."""
    due = (
        (
            await session.execute(
                select(Schedule)
                .where(Schedule.paused.is_(False), Schedule.next_fire_at <= now)
                .order_by(Schedule.next_fire_at)
                .limit(PASS_SIZE)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    started = 0
    for schedule in due:
        started += await _fire(session, schedule, now, rules)
    return started


def _ticks_until(schedule: Schedule, now: datetime) -> list[datetime]:
    """Its ticks from next_fire_at to now, the last MAX_CATCH_UP + 1 of them at most."""
    assert schedule.next_fire_at is not None
    kept: deque[datetime] = deque([schedule.next_fire_at], maxlen=MAX_CATCH_UP + 1)
    for n, tick in enumerate(ticks(schedule.cron, zone(schedule.timezone), schedule.next_fire_at)):
        if tick > now or n >= MAX_WALK:
            break
        kept.append(tick)
    return list(kept)


async def _fire(
    session: AsyncSession, schedule: Schedule, now: datetime, rules: ScheduleRules
) -> int:
    pending = _ticks_until(schedule, now)
    grace = timedelta(seconds=rules.misfire_seconds)
    on_time = [t for t in pending if now - t <= grace]
    late = [t for t in pending if now - t > grace]
    policy = CatchUp(schedule.catch_up)
    if policy == CatchUp.ALL:
        fired, missed = late[-MAX_CATCH_UP:], late[:-MAX_CATCH_UP]
    elif policy == CatchUp.LATEST:
        fired, missed = late[-1:], late[:-1]
    else:
        fired, missed = [], late
    started = 0
    for tick in missed:
        fire = await claim(session, schedule.id, tick)
        if fire is not None:
            fire.outcome = Outcome.MISSED
            fire.message = "no worker ran at this time"
    for tick in [*fired, *on_time]:  # oldest first
        fire = await claim(session, schedule.id, tick)
        if fire is None:
            continue  # fired already
        await start(session, schedule, fire, rules)
        schedule.last_fire_at = tick
        started += fire.outcome == Outcome.STARTED
    schedule.next_fire_at = next_after(
        schedule.cron, zone(schedule.timezone), max(now, pending[-1])
    )[0]
    changed(session, schedule)
    return started
