"""Tasks that run later: 10,000 tasks due in the same second, enqueued by one worker's ticker,
next to a bare baseline in the same run (the same 10,000 jobs enqueued straight into Redis in
one pipeline, as the submissions' own after-commit step does).

The tasks are submitted (stored QUEUED with `due_at`, no job) before their time; the clock
starts at their due time and stops when the last one's job is in its queue. Uses the test
stores (OPSGRAPH_TEST_DATABASE_URL / OPSGRAPH_TEST_REDIS_URL, or embedded servers).

    python -m bench.due [--tasks 10000] [--lead 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from app.cli.run import run_loop
from app.config import Settings
from app.db.models import Task
from app.kernel import effects
from app.platform import dispatch
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions
from bench import harness
from tests.stores import open_stores
from workers.loading import load
from workers.main import _due_loop, build_state, close_state

QUEUE = "bench-due"


async def _queued_jobs(state: Any) -> int:
    return int(await state.redis.zcard(dispatch.queue_key(QUEUE)))


async def _submit(state: Any, n: int, due: datetime) -> None:
    spec = task_specs.TaskSpec(task_type="echo", queue=QUEUE, run_at=due)
    for start in range(0, n, submissions.MAX_BATCH):
        async with state.unit_of_work() as session:
            await submissions.submit_tasks(
                session=session, specs=[spec] * min(submissions.MAX_BATCH, n - start)
            )


async def ticker(settings: Settings, n: int, lead: float) -> float:
    """Seconds from the due time until the last job is in its queue (one worker's ticker)."""
    state = await build_state(settings, queues=[QUEUE], concurrency=10)
    await state.redis.flushdb()
    async with state.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE tasks, task_transitions, task_counters CASCADE"))
        db_now = await session.scalar(select(func.now()))
    due = db_now + timedelta(seconds=lead)
    await _submit(state, n, due)
    assert await _queued_jobs(state) == 0, "nothing is enqueued before its time"
    loop = asyncio.create_task(_due_loop(state))
    wait = (due - datetime.now(UTC)).total_seconds()
    assert wait > 0, "submitting took longer than the lead: raise --lead"
    await asyncio.sleep(wait)
    started = time.perf_counter()
    while await _queued_jobs(state) < n:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    loop.cancel()
    await close_state(state)
    return elapsed


async def bare(settings: Settings, n: int) -> float:
    """The same jobs enqueued straight from a list of ids, in one pipeline."""
    state = await build_state(settings, queues=[QUEUE], concurrency=10)
    await state.redis.flushdb()
    async with state.sessionmaker() as session:
        ids = [str(i) for i in (await session.execute(select(Task.id))).scalars()]
    started = time.perf_counter()
    await dispatch.carry_out(state.redis, [effects.Enqueue(i, QUEUE, 50, "echo") for i in ids[:n]])
    elapsed = time.perf_counter() - started
    assert await _queued_jobs(state) == min(n, len(ids))
    await close_state(state)
    return elapsed


def _run(n: int, lead: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stores = open_stores(Path(tmp))
        try:
            settings = Settings(database_url=stores.database_url, redis_url=stores.redis_url)
            ticker_s = run_loop(ticker(settings, n, lead))
            bare_s = run_loop(bare(settings, n))
        finally:
            stores.close()
    return {"ticker_s": round(ticker_s, 3), "bare_enqueue_s": round(bare_s, 3)}


def main(n: int, lead: float, runs: int) -> dict[str, Any]:
    load()
    results = [_run(n, lead) for _ in range(max(runs, 1))]
    median = harness.median(results, key=lambda r: r["ticker_s"])
    return {
        "benchmark": "due",
        "tasks": n,
        **median,
        "ratio": round(median["ticker_s"] / median["bare_enqueue_s"], 2),
        "runs_ticker_s": [r["ticker_s"] for r in results],
        "budget_ticker_s": 2.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--lead", type=float, default=8.0, help="seconds to submit them in")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = main(args.tasks, args.lead, args.runs)
    print(f"{'run':<40}{'seconds':>10}")
    print(f"{'ticker: all due tasks in their queue':<40}{figures['ticker_s']:>10.3f}")
    print(f"{'bare: the same jobs in one pipeline':<40}{figures['bare_enqueue_s']:>10.3f}")
    print(
        f"ticker / bare: {figures['ratio']} (budget: the ticker within 2 s of the due time;"
        f" runs: {figures['runs_ticker_s']})"
    )
    print(json.dumps(figures))
