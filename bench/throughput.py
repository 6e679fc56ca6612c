"""Task throughput: bare arq running a no-op job versus opsgraph end to end (submit ->
simulated provider with zero latency -> COMPLETED in PostgreSQL), same machine, same run.

Both sides use the same Redis, the same concurrency, in-process arq workers in burst mode and
the event loop a worker process runs on (uvloop, see app/cli.run_loop), and are timed from
the first submission to the last completion. The LLM semaphore admits as
many calls as the concurrency, so it does not cap the run. Uses the test stores
(OPSGRAPH_TEST_DATABASE_URL / OPSGRAPH_TEST_REDIS_URL, or embedded servers).

    python -m bench.throughput [--tasks 5000] [--concurrency 10] [--worker-processes 2]
                               [--runs 3]

Each run times both sides back to back; with --runs N the pairs are repeated N times and the
figures are those of the run with the median ratio (all runs' ratios are listed too): bare
arq's own rate swings by 2x from run to run on a noisy machine (its poll sleeps), and one run
alone says more about that noise than about opsgraph.

With --worker-processes K > 1 the opsgraph side also runs with K worker processes (each with
the same concurrency, on the same queue), submitted the same way, and reports both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from arq import func
from arq.connections import create_pool
from arq.worker import Worker
from sqlalchemy import func as sqlfunc
from sqlalchemy import select, text

from app.cli.run import run_loop
from app.config import Settings
from app.db.models import Task
from app.edge.submissions import Submissions
from app.services.tasks import specs as task_specs
from bench import harness
from tests.stores import open_stores
from workers.main import build_state, build_workers, close_state, redis_settings

SUBMITTERS = 20
PHASES: dict[str, float] = {}


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def bare_arq(redis_url: str, n: int, concurrency: int) -> float:
    pool = await create_pool(redis_settings(redis_url))
    await pool.flushdb()

    async def submit(count: int) -> None:
        for _ in range(count):
            await pool.enqueue_job("noop")

    started = time.perf_counter()
    await asyncio.gather(
        *(submit(n // SUBMITTERS + (i < n % SUBMITTERS)) for i in range(SUBMITTERS))
    )
    worker = Worker(
        functions=[func(noop, name="noop", keep_result=0)],  # type: ignore[list-item]
        redis_pool=pool,
        burst=True,
        max_jobs=concurrency,
        poll_delay=0.05,
        handle_signals=False,
        keep_result=0,
    )
    await worker.main()
    elapsed = time.perf_counter() - started
    assert worker.jobs_complete == n, worker.jobs_complete
    await pool.aclose()
    return elapsed


SPEC = task_specs.TaskSpec(
    operation="chat_completion",
    queue="bench",
    input={"prompt": "ping"},
    config={"simulate": {"latency_ms": 0}},
)


async def _submit_all(state: Any, n: int, spec: task_specs.TaskSpec = SPEC) -> None:
    """`n` tasks submitted one at a time by each of SUBMITTERS at once, through the path an
    API call takes (app/edge/submissions.py: stored, then enqueued, before the call returns)."""
    submissions = Submissions(state.sessionmaker, state.redis)

    async def submit(count: int) -> None:
        for _ in range(count):
            await submissions.submit(spec)

    per = n // SUBMITTERS
    await asyncio.gather(*(submit(per + (i < n % SUBMITTERS)) for i in range(SUBMITTERS)))


async def _completed(state: Any) -> int:
    async with state.sessionmaker() as session:
        return int(
            (
                await session.execute(
                    select(sqlfunc.count()).select_from(Task).where(Task.status == "COMPLETED")
                )
            ).scalar_one()
        )


async def _drain(
    settings: Settings, n: int, concurrency: int, name: str, ready: Any, go: Any
) -> None:
    """One worker process: says it is ready (imports done, pools open), waits for the
    submissions, then runs burst workers on the queue until PostgreSQL says all are done."""
    state = await build_state(
        settings.model_copy(update={"worker_name": name}), queues=["bench"], concurrency=concurrency
    )
    ready.set()
    await asyncio.to_thread(go.wait)
    while await _completed(state) < n:
        await asyncio.gather(*(w.main() for w in build_workers(state, burst=True)))
    await close_state(state)


def _worker_process(
    settings: Settings, n: int, concurrency: int, name: str, ready: Any, go: Any
) -> None:
    run_loop(_drain(settings, n, concurrency, name, ready, go))


async def opsgraph_processes(settings: Settings, n: int, concurrency: int, k: int) -> float:
    """As `opsgraph`, with the work done by `k` worker processes, started (and their start-up
    paid) before the clock starts, as the in-process workers are."""
    state = await build_state(settings, queues=["bench"], concurrency=concurrency)
    await state.redis.flushdb()
    async with state.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE tasks, task_transitions, task_counters CASCADE"))
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(k)]
    procs = [
        ctx.Process(
            target=_worker_process,
            args=(settings, n, concurrency, f"bench-{i}", readies[i], go),
        )
        for i in range(k)
    ]
    for p in procs:
        p.start()
    for ready in readies:
        assert await asyncio.to_thread(ready.wait, 120), "a worker process did not start"
    started = time.perf_counter()
    await _submit_all(state, n)
    go.set()
    for p in procs:
        await asyncio.to_thread(p.join)
    elapsed = time.perf_counter() - started
    assert await _completed(state) >= n
    await close_state(state)
    return elapsed


async def opsgraph(
    settings: Settings, n: int, concurrency: int, spec: task_specs.TaskSpec = SPEC
) -> float:
    state = await build_state(settings, queues=["bench"], concurrency=concurrency)
    await state.redis.flushdb()
    started = time.perf_counter()
    workers = build_workers(state, burst=True)
    await _submit_all(state, n, spec)
    PHASES["opsgraph_submit_s"] = round(time.perf_counter() - started, 2)
    # Burst mode stops a worker on an empty queue; run again until PostgreSQL says all done.
    while True:
        await asyncio.gather(*(w.main() for w in workers))
        if await _completed(state) >= n:
            break
        workers = build_workers(state, burst=True)
    elapsed = time.perf_counter() - started
    await close_state(state)
    return elapsed


def main(n: int, concurrency: int, processes: int = 1, runs: int = 1) -> dict[str, Any]:
    """`runs` pairs of runs; the figures of the one with the median ratio, and every ratio."""
    results = [_run(n, concurrency, processes) for _ in range(max(runs, 1))]
    median = harness.median(results, key=lambda r: r["ratio"])
    return {**median, "runs": len(results), "ratios": [r["ratio"] for r in results]}


def _run(n: int, concurrency: int, processes: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        stores = open_stores(Path(tmp))
        try:
            settings = Settings(
                database_url=stores.database_url,
                redis_url=stores.redis_url,
                worker_name="bench-worker",
                llm_max_concurrent=concurrency,
            )
            arq_s = run_loop(bare_arq(stores.redis_url, n, concurrency))
            ops_s = run_loop(opsgraph(settings, n, concurrency))
            multi_s = (
                run_loop(opsgraph_processes(settings, n, concurrency, processes))
                if processes > 1
                else None
            )
        finally:
            stores.close()
    arq_tps, ops_tps = n / arq_s, n / ops_s
    extra = (
        {
            "worker_processes": processes,
            f"opsgraph_tasks_per_s_{processes}_processes": round(n / multi_s, 1),
            "processes_speedup": round(ops_s / multi_s, 2),
        }
        if multi_s
        else {}
    )
    return {
        "benchmark": "throughput",
        "tasks": n,
        "concurrency": concurrency,
        "bare_arq_tasks_per_s": round(arq_tps, 1),
        "opsgraph_tasks_per_s": round(ops_tps, 1),
        "ratio": round(ops_tps / arq_tps, 3),
        "budget_ratio": 0.5,
        **extra,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = main(args.tasks, args.concurrency, args.worker_processes, args.runs)
    print(f"{'run':<12}{'tasks':>8}{'seconds':>10}{'tasks/s':>10}")
    for label, key in (("bare arq", "bare_arq_tasks_per_s"), ("opsgraph", "opsgraph_tasks_per_s")):
        tps = figures[key]
        print(f"{label:<12}{figures['tasks']:>8}{figures['tasks'] / tps:>10.2f}{tps:>10.1f}")
    print(
        f"ratio opsgraph / bare arq: {figures['ratio']:.3f} (budget >= 0.5; median of"
        f" {figures['runs']} runs: {figures['ratios']})"
    )
    if args.worker_processes > 1:
        key = f"opsgraph_tasks_per_s_{args.worker_processes}_processes"
        print(
            f"opsgraph with {args.worker_processes} worker processes: {figures[key]} tasks/s"
            f" (x{figures['processes_speedup']} of one)"
        )
    print(json.dumps(figures))
