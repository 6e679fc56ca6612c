"""Schedules at scale: 1,000 schedules firing every minute, fired by one worker's schedule pass
(workers/main.py `_schedule_pass`, the loop's body), as a share of one core over the minute,
next to a bare baseline in the same run (the same 1,000 tasks submitted straight, in batches,
as a client's `submitTasks` would).

The platform clock is moved (app/platform/clock.py's offset file) so each simulated minute
starts at once: its tick is due, the pass fires every schedule, and the worker's CPU time
(this process's; PostgreSQL's own is not counted) and wall time are taken. Every fire must
start its task (none missed past the misfire grace). Uses the test stores
(OPSGRAPH_TEST_DATABASE_URL / OPSGRAPH_TEST_REDIS_URL, or embedded servers).

    python -m bench.schedules [--schedules 1000] [--minutes 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from app.cli.run import run_loop
from app.config import Settings
from app.db.models import ScheduleFire
from app.platform import clock
from app.services.schedules import commands, cron
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions
from bench import harness
from tests.stores import open_stores
from workers.loading import load
from workers.main import _schedule_pass, build_state, close_state

QUEUE = "bench-schedules"
TRUNCATE = "TRUNCATE schedules, schedule_fires, tasks, task_transitions, task_counters CASCADE"


class Clock:
    """The platform clock, moved to a given time through its offset file."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "clock"
        self.file.write_text("0")
        clock.configure(self.file)

    def set(self, at: datetime) -> None:
        offset = (at - clock.now()).total_seconds() + float(self.file.read_text())
        self.file.write_text(repr(offset))


async def _fresh(state: Any) -> datetime:
    async with state.sessionmaker() as session, session.begin():
        await session.execute(text(TRUNCATE))
        now: datetime = await session.scalar(select(func.now()))
    await state.redis.flushdb()
    return now


async def scheduled(settings: Settings, n: int, minutes: int, folder: Path) -> dict[str, Any]:
    """CPU and wall seconds of firing `n` minutely schedules, per simulated minute."""
    state = await build_state(settings, queues=[QUEUE], concurrency=10)
    now = await _fresh(state)
    moved = Clock(folder)
    # ALLOW: no worker runs the tasks they start, so SKIP would skip every fire after the first
    spec = commands.ScheduleSpec(
        name="", cron="* * * * *", task_type="echo", overlap=cron.Overlap.ALLOW
    )
    async with state.unit_of_work() as session:
        for i in range(n):
            spec.name = f"every minute {i}"
            await commands.create_schedule(
                session=session, spec=spec, rules=settings.schedules, tenant_id=None, now=now
            )
    first_tick = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # an idle pass (nothing due): what the loop costs every second regardless
    moved.set(first_tick - timedelta(seconds=20))
    started = time.process_time()
    for _ in range(20):
        await _schedule_pass(state)
    idle_pass = (time.process_time() - started) / 20
    cpu, wall = [], []
    for minute in range(minutes):
        moved.set(first_tick + timedelta(minutes=minute, seconds=0.5))
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        await _schedule_pass(state)
        cpu.append(time.process_time() - cpu_started)
        wall.append(time.perf_counter() - wall_started)
    async with state.sessionmaker() as session:
        counted = select(ScheduleFire.outcome, func.count()).group_by(ScheduleFire.outcome)
        outcomes = {o: n for o, n in (await session.execute(counted)).tuples()}
    await close_state(state)
    clock.configure(None)
    assert outcomes == {commands.Outcome.STARTED: n * minutes}, outcomes
    return {"cpu": harness.median(cpu, key=float), "wall": max(wall), "idle_pass": idle_pass}


async def bare(settings: Settings, n: int) -> float:
    """CPU seconds of submitting the same `n` tasks straight, in batches."""
    state = await build_state(settings, queues=[QUEUE], concurrency=10)
    await _fresh(state)
    spec = task_specs.TaskSpec(task_type="echo", origin_instance="schedule")
    started = time.process_time()
    for first in range(0, n, submissions.MAX_BATCH):
        async with state.unit_of_work() as session:
            await submissions.submit_tasks(
                session=session, specs=[spec] * min(submissions.MAX_BATCH, n - first)
            )
    elapsed = time.process_time() - started
    await close_state(state)
    return elapsed


def main(n: int, minutes: int) -> dict[str, Any]:
    load()
    with tempfile.TemporaryDirectory() as tmp:
        stores = open_stores(Path(tmp))
        try:
            settings = Settings(database_url=stores.database_url, redis_url=stores.redis_url)
            fired = run_loop(scheduled(settings, n, minutes, Path(tmp)))
            bare_cpu = run_loop(bare(settings, n))
        finally:
            stores.close()
    share = fired["cpu"] / 60
    return {
        "benchmark": "schedules",
        "schedules": n,
        "minutes": minutes,
        "fire_cpu_s_per_minute": round(fired["cpu"], 3),
        "fire_wall_s_max": round(fired["wall"], 3),
        "idle_pass_cpu_ms": round(fired["idle_pass"] * 1000, 2),
        "bare_submit_cpu_s": round(bare_cpu, 3),
        "ratio": round(fired["cpu"] / bare_cpu, 2),
        "share_of_core_pct": round(share * 100, 2),
        "budget_share_of_core_pct": 5.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=5)
    args = parser.parse_args()
    f = main(args.schedules, args.minutes)
    print(f"{'run':<52}{'seconds':>10}")
    print(
        f"{'schedule pass: CPU to fire every schedule once':<52}{f['fire_cpu_s_per_minute']:>10.3f}"
    )
    print(f"{'schedule pass: wall time of that pass (max)':<52}{f['fire_wall_s_max']:>10.3f}")
    print(f"{'bare: CPU to submit the same tasks in batches':<52}{f['bare_submit_cpu_s']:>10.3f}")
    print(f"{'an idle pass (every second regardless), ms CPU':<52}{f['idle_pass_cpu_ms']:>10.2f}")
    print(
        f"fire / bare: {f['ratio']}; a worker's CPU for {f['schedules']} minutely schedules:"
        f" {f['share_of_core_pct']} % of one core (budget {f['budget_share_of_core_pct']} %)"
    )
    print(json.dumps(f))
