"""The maintained figures never drift: after a random mix of submits (one by one and in bulk),
retries, fatal errors, requeues from the DLQ, cancels while queued and while running, a worker
killed mid-task and a reset of the LLM statistics, the counters and rollups equal counts over
the rows, and the stats endpoints (which read only them) answer what a scan would."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.test_workflows import create, echo, wait_workflow
from tests.waiting import wait_for

QUEUE = "mixq"
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")

COUNTED = """
SELECT queue, status, tenant, task_type, provider, model, since_reset, sum(tasks),
  sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(latency_ms_sum), sum(latencies),
  sum(generation_ms_sum)
FROM task_counters GROUP BY 1, 2, 3, 4, 5, 6, 7
HAVING sum(tasks) <> 0 OR sum(input_tokens) <> 0 OR sum(latencies) <> 0
"""
# The same figures straight from the rows, the marker read as the triggers read it.
SCANNED = """
SELECT queue, status, coalesce(origin_tenant_id, ''), task_type, coalesce(provider, ''),
  coalesce(model, ''),
  (task_type = 'llm' AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND (
    (SELECT reset_at FROM llm_stats_state WHERE id = 1) IS NULL
    OR completed_at > (SELECT reset_at FROM llm_stats_state WHERE id = 1))) IS TRUE,
  count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd),
  coalesce(sum(latency_ms), 0), count(latency_ms),
  coalesce(sum(latency_ms) FILTER (WHERE output_tokens > 0), 0)
FROM tasks GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
ROLLED = """
SELECT bucket, grain, kind, queue, tenant, status, sum(tasks), sum(wait_ms_sum),
  sum(duration_s_sum), sum(durations)
FROM task_rollups GROUP BY 1, 2, 3, 4, 5, 6
HAVING sum(tasks) <> 0 OR sum(wait_ms_sum) <> 0 OR sum(durations) <> 0
"""
ROLLED_FROM_ROWS = """
SELECT v.bucket, v.grain, v.kind, t.queue, coalesce(t.origin_tenant_id, ''), v.status,
  count(*), sum(v.wait_ms), sum(v.duration_s), sum(v.durations)
FROM tasks t CROSS JOIN LATERAL (VALUES
  (date_trunc('minute', t.created_at), 'm', 'c', '', 0::float8, 0::float8, 0),
  (date_trunc('hour', t.created_at), 'h', 'c', '', 0::float8, 0::float8, 0),
  (date_trunc('minute', t.started_at), 'm', 's', '',
    extract(epoch FROM t.started_at - t.created_at)::float8 * 1000, 0::float8, 0),
  (CASE WHEN t.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
    THEN date_trunc('minute', t.completed_at) END, 'm', 'f', t.status, 0::float8,
    coalesce(extract(epoch FROM t.completed_at - t.started_at)::float8, 0),
    (t.started_at IS NOT NULL)::int)
) AS v (bucket, grain, kind, status, wait_ms, duration_s, durations)
WHERE v.bucket IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""


GONE_ROWS = """SELECT count(*) FROM task_counters WHERE shard <> 0
AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)"""


async def _scalar(engine: Any, sql: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


def _close(a: dict[Any, tuple[Any, ...]], b: dict[Any, tuple[Any, ...]]) -> None:
    assert a.keys() == b.keys()
    for key, got in a.items():
        assert got == pytest.approx(b[key], rel=1e-9, abs=1e-6), key


async def _rows(engine: Any, sql: str, width: int) -> dict[Any, tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(sql))).all()
    return {tuple(r[:width]): tuple(float(x) for x in r[width:]) for r in rows}


async def _settled(engine: Any, timeout: float = 60) -> None:
    """Until nothing of the mix is queued or running (the parked queue has no worker)."""
    moving = (
        "SELECT count(*) FROM tasks WHERE queue <> 'parked' AND status IN ('QUEUED', 'RUNNING')"
    )
    await wait_for(
        lambda: _scalar(engine, moving),
        until=lambda n: n == 0,
        timeout=timeout,
        what="the count of queued and running tasks of the mix to reach 0",
    )


async def _echo(admin: GraphQLClient, *, latency_ms: int) -> str:
    task = await admin.data(
        "SubmitTask",
        input={
            "taskType": "echo",
            "queue": QUEUE,
            "config": {"simulate": {"latency_ms": latency_ms}},
        },
    )
    return str(task["submitTask"]["task"]["id"])


def _spec(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["done", "retried", "fatal", "exhausted", "long", "parked", "llm"])
    tenant = rng.choice([None, "acme", "globex"])
    spec: dict[str, Any] = {"taskType": "echo", "queue": QUEUE}
    if tenant:
        spec["originTenantId"] = tenant
    if kind == "retried":
        spec.update(maxRetries=3, config={"simulate": {"fail_attempts": 2}})
    elif kind == "fatal":
        spec["config"] = {"simulate": {"fail_attempts": 9, "error": "fatal"}}
    elif kind == "exhausted":
        spec.update(maxRetries=1, config={"simulate": {"fail_attempts": 9}})
    elif kind == "long":
        spec["config"] = {"simulate": {"latency_ms": 1500}}
    elif kind == "parked":
        spec["queue"] = "parked"
    elif kind == "llm":
        spec = {
            **{k: v for k, v in spec.items() if k != "taskType"},
            "operation": "chat_completion",
            "input": {"prompt": f"hello {rng.random()}"},
        }
    return spec


async def test_counters_and_rollups_equal_the_rows_after_a_random_mix(
    admin: GraphQLClient, worker: Proc, spawn_worker: Callable[..., Proc], engine: Any
) -> None:
    rng = random.Random(20261202)
    doomed = spawn_worker("worker-mix-doomed", QUEUE, concurrency=8)
    # given a random mix, submitted one by one and in a bulk call
    singles = [
        (await admin.data("SubmitTask", input=_spec(rng)))["submitTask"]["task"] for _ in range(40)
    ]
    bulk = await admin.data("SubmitTasks", input=[_spec(rng) for _ in range(30)])
    assert bulk["submitTasks"]["errors"] == []
    submitted = singles + bulk["submitTasks"]["tasks"]
    parked = [t["id"] for t in submitted if t["queue"] == "parked"]
    assert len(parked) >= 3
    # cancels while queued, and a retry of a cancelled task
    for task_id in parked[:2]:
        await admin.data("CancelTask", id=task_id)
    await admin.data("RetryTask", id=parked[0])
    # a worker killed mid-task: its long tasks are recovered by another worker
    long = await _echo(admin, latency_ms=3000)
    running = await wait_for_status(admin, long, {"RUNNING"})
    assert running["workerName"] == "worker-mix-doomed"
    doomed.kill()
    spawn_worker("worker-mix-rescuer", QUEUE, concurrency=8)
    # a cancel while running
    victim = await _echo(admin, latency_ms=30000)
    await wait_for_status(admin, victim, {"RUNNING"}, timeout=30)
    await admin.data("CancelTask", id=victim)
    await _settled(engine)
    # requeues from the dead letter queue (the fatal ones fail again)
    requeued = await admin.data("RequeueAllDlqJobs", queue=QUEUE)
    assert requeued["requeueAllDlqJobs"]["requeuedCount"] > 0
    # a reset of the LLM statistics in the middle, deleting finished LLM tasks, then more
    cleared = await admin.data("ClearLlmStats", olderThanHours=0)
    assert cleared["clearLlmStats"]["errors"] == []
    for i in range(10):
        spec = _spec(rng) if i < 7 else {"operation": "chat_completion", "queue": QUEUE}
        spec.setdefault("input", {"prompt": f"after the reset {i}"})
        await admin.data("SubmitTask", input=spec)
    await _settled(engine)

    # the killed worker's connections are gone: the reconciler folds their counter rows in
    await wait_for(
        lambda: _scalar(engine, GONE_ROWS),
        until=lambda n: not n,
        every=0.2,
        timeout=30,
        what="no counter rows of closed backends",
    )
    # then the counters equal an independent count over the rows, key by key
    async with engine.connect() as conn:
        statuses = dict(
            (await conn.execute(text("SELECT status, count(*) FROM tasks GROUP BY 1"))).all()
        )
    assert {"COMPLETED", "FAILED", "CANCELLED", "QUEUED"} <= statuses.keys(), statuses
    _close(await _rows(engine, COUNTED, 7), await _rows(engine, SCANNED, 7))
    # and so do the rollups (all rows are younger than the 25 hours they keep)
    _close(await _rows(engine, ROLLED, 6), await _rows(engine, ROLLED_FROM_ROWS, 6))

    # and the endpoints that read them answer what a scan of the rows says
    stats = (await admin.http.get("/api/v1/monitoring/stats")).json()
    async with engine.connect() as conn:
        total, last_hour = (
            await conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE created_at >= now() - "
                    "interval '1 hour') FROM tasks"
                )
            )
        ).one()
        depth = dict(
            (
                await conn.execute(
                    text("SELECT queue, count(*) FROM tasks WHERE status = 'QUEUED' GROUP BY 1")
                )
            ).all()
        )
        llm_tokens = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM tasks "
                    "WHERE task_type = 'llm' AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') "
                    "AND completed_at > (SELECT reset_at FROM llm_stats_state)"
                )
            )
        ).scalar_one()
    assert stats["total_tasks"] == total and stats["tasks_last_hour"] == last_hour
    queues = (await admin.http.get("/api/v1/monitoring/queues")).json()["queues"]
    assert {q["name"]: q["depth"] for q in queues if q["depth"]} == depth
    llm = (await admin.http.get("/api/v1/llm/stats")).json()["data"]
    assert llm["total_tokens"] == llm_tokens > 0


async def test_workflow_figures_equal_the_rows(
    admin: GraphQLClient, worker: Proc, engine: Any
) -> None:
    # given workflows that complete, fail and are cancelled, for two tenants
    done = await create(admin, [echo("a"), echo("b", ["a"])], originTenantId="acme")
    failed = await create(
        admin, [echo("a", simulate={"fail_attempts": 9, "error": "fatal"})], name="doomed"
    )
    cancelled = await create(admin, [echo("slow", latency=30000), echo("after", ["slow"])])
    await admin.data("CancelWorkflow", id=cancelled["id"])
    await wait_workflow(admin, done["id"], {"COMPLETED"})
    await wait_workflow(admin, failed["id"], {"FAILED"})
    await wait_workflow(admin, cancelled["id"], {"CANCELLED"})
    # then the counters equal a count of the rows, and the stats say so
    counted = await _rows(
        engine,
        "SELECT status, tenant, sum(workflows), sum(steps) FROM workflow_counters "
        "GROUP BY 1, 2 HAVING sum(workflows) <> 0",
        2,
    )
    scanned = await _rows(
        engine,
        "SELECT status, coalesce(origin_tenant_id, ''), count(*), sum(total_steps) "
        "FROM workflows GROUP BY 1, 2",
        2,
    )
    _close(counted, scanned)
    stats = (await admin.http.get("/api/v1/monitoring/workflows/stats")).json()
    assert stats["total_workflows"] == 3 and stats["workflows_last_hour"] == 3
    assert stats["avg_steps_per_workflow"] == round(5 / 3, 2)
    live = (await admin.data("WorkflowStats"))["workflowStats"]
    assert live["totalWorkflows"] == 3 and live["workflowsLast24h"] == 3
    assert {s["key"]: s["count"] for s in live["byStatus"]} == {
        "COMPLETED": 1,
        "FAILED": 1,
        "CANCELLED": 1,
    }


async def test_concurrent_writers_never_wait_on_each_others_counter_rows(engine: Any) -> None:
    # given a transaction that has inserted a task and holds its counter rows
    insert = text(
        "INSERT INTO tasks (id, task_type, status, queue, priority, origin_instance, input, "
        "config, metadata, errors, attempts, max_attempts, retry_count, dead_lettered, "
        "is_resumed, resume_attempt_count, progress, progress_history, input_tokens, "
        "output_tokens, cost_usd, created_at, updated_at, media, service_requests) VALUES "
        "(gen_random_uuid(), 'echo', 'QUEUED', 'lockq', 50, 'api', '{}', '{}', '{}', '[]', 0, "
        "1, 0, false, false, 0, 0, '[]', 0, 0, 0, now(), now(), '{}', '[]')"
    )
    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        await first.execute(insert)
        # when another transaction changes the very same counter and rollup keys
        await second.begin()
        await second.execute(text("SET LOCAL lock_timeout = '1s'"))
        await second.execute(insert)
        await second.execute(text("UPDATE tasks SET status = 'CANCELLED' WHERE queue = 'lockq'"))
        # then it did not wait for the first (a lock wait would have timed out), and both count
        await second.commit()
        await first.commit()
    assert await _scalar(
        engine,
        "SELECT sum(tasks) FROM task_counters WHERE queue = 'lockq' AND status = 'CANCELLED'",
    ) == await _scalar(
        engine, "SELECT count(*) FROM tasks WHERE queue = 'lockq' AND status = 'CANCELLED'"
    )
