"""The schedule ticker's pass: each due schedule's ticks up to now, fired as its catch-up
policy says, its next tick moved on. Every worker runs passes; a schedule's row is locked by
the pass that takes it (others skip it) and each tick is claimed by a unique row, so a tick
runs at most once whatever the number of workers, restarts or a Redis flush."""

from __future__ import annotations

from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Schedule, Task
from app.services.schedules.commands import Outcome, changed, claim_many, start
from app.services.schedules.config import ScheduleRules
from app.services.schedules.cron import MAX_CATCH_UP, CatchUp, next_after, ticks, zone
from app.services.tasks import submissions

# schedules one pass looks at; the ticks of one schedule it walks at most (a minutely schedule
# down for a week has 10,080: the oldest are dropped, not fired)
PASS_SIZE = 100
MAX_WALK = 20_000


async def fire_due(session: AsyncSession, *, now: datetime, rules: ScheduleRules) -> int:
    """One pass at `now` (the platform clock); the number of schedules it took (a full pass,
    `PASS_SIZE`, says more may be due: the ticker runs the next one at once). The pass's
    ticks are claimed in one statement and its task runs stored in another."""
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
    plans = [_plan(schedule, now, rules) for schedule in due]
    fires = await claim_many(
        session, [(p.schedule.id, tick) for p in plans for tick in [*p.missed, *p.fired]]
    )
    await submissions.know_types({s.task_type for s in due}, lambda: nullcontext(session))
    made: list[Task] = []
    for plan in plans:
        schedule = plan.schedule
        for tick in plan.missed:
            fire = fires.get((schedule.id, tick))
            if fire is not None:
                fire.outcome = Outcome.MISSED
                fire.message = "no worker ran at this time"
        for tick in plan.fired:  # oldest first
            fire = fires.get((schedule.id, tick))
            if fire is None:
                continue  # fired already
            await start(session, schedule, fire, rules, deferred=made)
            schedule.last_fire_at = tick
        schedule.next_fire_at = plan.next_fire_at
        changed(session, schedule)
    await submissions.store_tasks(session=session, made=made)
    return len(due)


@dataclass(frozen=True)
class _Plan:
    """What a pass does with one schedule's ticks up to now."""

    schedule: Schedule
    missed: list[datetime]  # recorded MISSED
    fired: list[datetime]  # run, oldest first
    next_fire_at: datetime


def _plan(schedule: Schedule, now: datetime, rules: ScheduleRules) -> _Plan:
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
    tz = zone(schedule.timezone)
    return _Plan(
        schedule,
        missed,
        [*fired, *on_time],
        next_after(schedule.cron, tz, max(now, pending[-1]))[0],
    )


def _ticks_until(schedule: Schedule, now: datetime) -> list[datetime]:
    """Its ticks from next_fire_at to now, the last MAX_CATCH_UP + 1 of them at most."""
    assert schedule.next_fire_at is not None
    kept: deque[datetime] = deque([schedule.next_fire_at], maxlen=MAX_CATCH_UP + 1)
    for n, tick in enumerate(ticks(schedule.cron, zone(schedule.timezone), schedule.next_fire_at)):
        if tick > now or n >= MAX_WALK:
            break
        kept.append(tick)
    return list(kept)
