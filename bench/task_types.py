"""Task types of users' own: what the registry and the input's schema cost.

1. Validation at submit: microseconds per input checked against a registered type's JSON
   Schema (compiled once, as the API does), next to the bare cost of a dict copy.
2. End to end, same run, same stores: opsgraph's `echo` (0 ms) versus a user-registered no-op
   type with an input schema, each submitted through the API's path and run by in-process
   workers; the ratio says what the registry (lookup, validation, the author's context) costs.

    python -m bench.task_types [--tasks 3000] [--concurrency 10] [--runs 3] [--checks 100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

import opsgraph
from app.cli.run import run_loop
from app.config import Settings
from app.db.base import make_engine, make_sessionmaker
from app.services.tasks import registry
from app.services.tasks import specs as task_specs
from app.services.tasks.catalog import CATALOG, Registered
from bench import harness
from bench.throughput import opsgraph as run_opsgraph
from opsgraph.definitions import lookup
from tests.stores import open_stores
from workers.loading import load


class Resize(BaseModel):
    url: str
    width: int = 256
    height: int = 256
    keep_aspect: bool = True


@opsgraph.task("bench.noop", queue="bench", input=Resize)
async def noop(ctx: opsgraph.TaskContext, args: Resize) -> None:
    return None


INPUT = {"url": "https://example.com/a.png", "width": 640}
ECHO = task_specs.TaskSpec(task_type="echo", queue="bench", config={"simulate": {"latency_ms": 0}})
OWN = task_specs.TaskSpec(task_type="bench.noop", input=INPUT)


def validation_us(checks: int) -> dict[str, float]:
    definition = lookup("bench.noop")
    assert definition is not None
    registered = Registered(
        name="bench.noop",
        definition_hash=definition.definition_hash(),
        queue="bench",
        description=None,
        input_schema=definition.input_schema(),
        retries=None,
        timeout_seconds=None,
        first_registered_at=None,  # type: ignore[arg-type]
    )
    CATALOG.check_input(registered, INPUT)  # compiled once, as in the API
    started = time.perf_counter()
    for _ in range(checks):
        CATALOG.check_input(registered, INPUT)
    check = (time.perf_counter() - started) / checks * 1e6
    started = time.perf_counter()
    for _ in range(checks):
        dict(INPUT)
    bare = (time.perf_counter() - started) / checks * 1e6
    return {"validation_us": round(check, 2), "dict_copy_us": round(bare, 3)}


async def _reset(settings: Settings) -> None:
    """Each side starts from no task (the harness counts COMPLETED rows to know it is done)."""
    engine = make_engine(settings.database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE tasks, task_transitions, task_counters CASCADE"))
    await engine.dispose()


async def _completed(settings: Settings, task_type: str) -> int:
    engine = make_engine(settings.database_url, pool_size=1)
    async with engine.connect() as conn:
        done = await conn.scalar(
            text("SELECT count(*) FROM tasks WHERE task_type = :t AND status = 'COMPLETED'"),
            {"t": task_type},
        )
    await engine.dispose()
    return int(done or 0)


async def _register(settings: Settings) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    async with make_sessionmaker(engine)() as session, session.begin():
        definitions = [
            d.definition() | {"hash": d.definition_hash()}
            for d in (lookup("bench.noop"), lookup("echo"))
            if d is not None
        ]
        await registry.register(session=session, definitions=definitions, worker="bench")
    await engine.dispose()


def _run(n: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        stores = open_stores(Path(tmp))
        try:
            settings = Settings(
                database_url=stores.database_url,
                redis_url=stores.redis_url,
                worker_name="bench-worker",
                llm_max_concurrent=concurrency,
            )
            run_loop(_register(settings))
            run_loop(_reset(settings))
            echo_s = run_loop(run_opsgraph(settings, n, concurrency, ECHO))
            assert run_loop(_completed(settings, "echo")) == n
            run_loop(_reset(settings))
            own_s = run_loop(run_opsgraph(settings, n, concurrency, OWN))
            assert run_loop(_completed(settings, "bench.noop")) == n
        finally:
            stores.close()
    return {"echo_tasks_per_s": round(n / echo_s, 1), "own_tasks_per_s": round(n / own_s, 1)}


def main(n: int, concurrency: int, runs: int, checks: int) -> dict[str, Any]:
    load()  # opsgraph's own types, as a worker loads them (bench.noop is defined above)
    results = []
    for _ in range(max(runs, 1)):
        r = _run(n, concurrency)
        results.append({**r, "ratio": round(r["own_tasks_per_s"] / r["echo_tasks_per_s"], 3)})
    median = harness.median(results, key=lambda r: r["ratio"])
    return {
        "benchmark": "task_types",
        "tasks": n,
        "concurrency": concurrency,
        **median,
        "ratios": [r["ratio"] for r in results],
        "budget_ratio": 0.95,
        **validation_us(checks),
        "budget_validation_us": 50.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checks", type=int, default=100_000)
    args = parser.parse_args()
    figures = main(args.tasks, args.concurrency, args.runs, args.checks)
    print(f"{'run':<26}{'tasks/s':>10}")
    print(f"{'echo (opsgraph own)':<26}{figures['echo_tasks_per_s']:>10.1f}")
    print(f"{'bench.noop (registered)':<26}{figures['own_tasks_per_s']:>10.1f}")
    print(
        f"ratio registered / echo: {figures['ratio']:.3f} (budget >= 0.95; median of"
        f" {args.runs} runs: {figures['ratios']})"
    )
    print(
        f"input validation: {figures['validation_us']} us per task (budget <= 50; a dict copy:"
        f" {figures['dict_copy_us']} us)"
    )
    print(json.dumps(figures))
