"""Seed 000 and the LLM queue: the semaphore measured across two workers, leases after a
SIGKILL, token and cost totals, clearing stats, every endpoint's shape and errors, and 503
when Redis is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_sessionmaker
from app.db.models import Task
from app.platform.embedded import start_redis
from app.services.llm.queue import human_duration
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from tests.client import GraphQLClient, rest_client
from tests.conftest import wait_for_status
from tests.processes import Proc, start_server
from tests.receiver import SlowProvider
from tests.waiting import wait_for

LLM = "/api/v1/llm"


@pytest.fixture
async def provider() -> AsyncIterator[SlowProvider]:
    async with SlowProvider() as slow:
        yield slow


async def test_semaphore_bounds_calls_and_admits_high_first(
    admin: GraphQLClient,
    spawn_worker: Callable[..., Proc],
    provider: SlowProvider,
) -> None:
    sem_env = {
        "OPSGRAPH_LLM_BASE_URL": provider.url + "/v1",
        "OPSGRAPH_LLM_MAX_CONCURRENT": "2",
        "OPSGRAPH_LLM_RESERVED_HIGH_PRIORITY": "1",
    }
    # given two worker processes sharing one semaphore of 2 slots (1 reserved for high)
    spawn_worker("worker-sem-a", "semq", concurrency=20, **sem_env)
    spawn_worker("worker-sem-b", "semq", concurrency=20, **sem_env)

    async def submit(prefix: str, priority: int, n: int) -> list[str]:
        ids = []
        for i in range(n):
            data = await admin.data(
                "SubmitTask",
                input={
                    "operation": "chat_completion",
                    "queue": "semq",
                    "priority": priority,
                    "input": {"prompt": f"{prefix}-{i}"},
                },
            )
            ids.append(data["submitTask"]["task"]["id"])
        return ids

    # when ten low-priority tasks queue up and one of them is running
    lows = await submit("low", 10, 10)
    await wait_for_status(admin, lows[0], {"RUNNING", "COMPLETED"})
    stats = (await admin.http.get(f"{LLM}/stats")).json()["data"]["semaphore_stats"]
    assert stats["active_low_priority"] <= 1
    # and ten high-priority tasks arrive
    highs = await submit("high", 90, 10)
    # while they wait for a slot they read "queued" everywhere: never more than 2 running
    most = {"running": 0, "waiting": 0}

    async def drained() -> bool:  # (looked at every 0.05 s until no task is left)
        listed = (await admin.http.get(f"{LLM}/tasks")).json()["data"]
        sem = (await admin.http.get(f"{LLM}/stats")).json()["data"]["semaphore_stats"]
        running = sum(1 for t in listed if t["status"] == "running")
        most["running"] = max(most["running"], running)
        waiting = sem["waiting_high_priority"] + sem["waiting_low_priority"]
        most["waiting"] = max(most["waiting"], waiting)
        return not listed

    await wait_for(drained, every=0.05, timeout=60, what="every LLM task to leave the list")
    assert most["running"] <= 2 and most["waiting"] > 0
    done = {t: await wait_for_status(admin, t, {"COMPLETED"}, timeout=60) for t in lows + highs}

    # then the provider never saw more than 2 calls at once, and low never took the reserve
    assert provider.peak["all"] == 2
    assert provider.peak["low"] == 1
    # and every high task started before any low task still waiting when the highs arrived
    highs_arrived = min(datetime.fromisoformat(done[h]["createdAt"]) for h in highs)
    waiting_lows = [
        low for low in lows if datetime.fromisoformat(done[low]["startedAt"]) > highs_arrived
    ]
    assert waiting_lows, "some low tasks were still waiting when the highs arrived"
    last_high = max(datetime.fromisoformat(done[h]["startedAt"]) for h in highs)
    first_waiting_low = min(datetime.fromisoformat(done[w]["startedAt"]) for w in waiting_lows)
    assert last_high <= first_waiting_low

    sem = (await admin.data("LlmStats"))["llmStats"]["semaphoreStats"]
    assert sem["totalHighPriority"] == 10 and sem["totalLowPriority"] == 10
    assert sem["avgWaitTimeLow"] > sem["avgWaitTimeHigh"] >= 0
    assert sem["activeCount"] == 0 and sem["maxConcurrent"] == 2


async def test_killed_holder_gives_its_slot_back_within_the_lease(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    env = {"OPSGRAPH_LLM_MAX_CONCURRENT": "1", "OPSGRAPH_LLM_LEASE_TTL_SECONDS": "2"}
    holder = spawn_worker("worker-holder", "leaseq", **env)
    data = await admin.data(
        "SubmitTask",
        input={
            "operation": "chat_completion",
            "queue": "leaseq",
            "priority": 90,
            "input": {"prompt": "hold"},
            "config": {"simulate": {"latency_ms": 60_000}},
        },
    )
    task_id = data["submitTask"]["task"]["id"]
    await wait_for_status(admin, task_id, {"RUNNING"})
    sem = (await admin.http.get(f"{LLM}/stats")).json()["data"]["semaphore_stats"]
    assert sem["active_count"] == 1 and sem["active_high_priority"] == 1

    holder.kill()

    async def semaphore() -> dict[str, Any]:
        stats: dict[str, Any] = (await admin.http.get(f"{LLM}/stats")).json()["data"]
        return stats["semaphore_stats"]

    await wait_for(  # within the lease (2 s) and a margin
        semaphore,
        until=lambda sem: sem["active_count"] == 0,
        every=0.05,
        timeout=2 + 1.5,
        what="the killed holder's slot to be given back",
    )

    # and the slot is usable: another task completes on another worker (the killed holder's
    # task is cancelled, so its resumed run cannot take the single slot first)
    await admin.data("CancelTask", id=task_id)
    spawn_worker("worker-after", "leaseq", **env)
    quick = await admin.data(
        "SubmitTask",
        input={
            "operation": "chat_completion",
            "queue": "leaseq",
            "priority": 90,
            "input": {"prompt": "quick"},
            "config": {"simulate": {"latency_ms": 1}},
        },
    )
    await wait_for_status(admin, quick["submitTask"]["task"]["id"], {"COMPLETED"}, timeout=30)


async def make_llm_task(
    engine: AsyncEngine,
    *,
    status: str,
    hours_ago: float,
    tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0,
    model: str = "m1",
    tenant: str | None = None,
    queue: str = "llm-parked",  # no worker consumes it: seeded rows never race a worker
) -> uuid.UUID:
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        task = await task_submissions.submit_task(
            session=session,
            defaults=task_specs.TaskDefaults(max_retries=0),
            spec=task_specs.TaskSpec(
                operation="chat_completion",
                queue=queue,
                input={"prompt": "p"},
                origin_tenant_id=tenant,
            ),
        )
        at = datetime.now(UTC) - timedelta(hours=hours_ago)
        values: dict[str, Any] = {
            "status": status,
            "created_at": at,
            "model": model,
            "input_tokens": tokens[0],
            "output_tokens": tokens[1],
            "cost_usd": cost,
        }
        if status != "QUEUED":
            values["started_at"] = at
        if status in ("COMPLETED", "FAILED", "CANCELLED"):
            values["completed_at"] = at + timedelta(seconds=30)
        await session.execute(update(Task).where(Task.id == task.id).values(**values))
    return task.id


async def test_totals_equal_the_sum_over_tasks_and_clear_by_age(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    fresh = await make_llm_task(
        engine,
        status="COMPLETED",
        hours_ago=1,
        tokens=(100, 50),
        cost=0.01,
        model="m1",
        tenant="t1",
    )
    mid = await make_llm_task(
        engine, status="FAILED", hours_ago=30, tokens=(10, 0), cost=0.002, model="m2"
    )
    old = await make_llm_task(
        engine,
        status="COMPLETED",
        hours_ago=100,
        tokens=(1000, 500),
        cost=0.1,
        model="m1",
        queue="ops-parked",
    )
    old_queued = await make_llm_task(engine, status="QUEUED", hours_ago=200)
    old_running = await make_llm_task(engine, status="RUNNING", hours_ago=200)

    data = (await admin.http.get(f"{LLM}/stats")).json()["data"]
    assert data["total_input_tokens"] == 1110 and data["total_output_tokens"] == 550
    assert data["total_tokens"] == 1660
    assert data["total_cost_usd"] == pytest.approx(0.112)
    queues = {q["queue"]: q for q in data["queues"]}
    parked = queues["llm-parked"]
    assert parked["total_input_tokens"] == 110 and parked["queued"] == 1
    assert parked["running"] == 1
    assert queues["ops-parked"]["total_cost_usd"] == pytest.approx(0.1)
    assert data["total_queued"] == 1
    gql = (await admin.data("LlmStats"))["llmStats"]
    by_model = {u["key"]: u for u in gql["byModel"]}
    assert by_model["m1"]["inputTokens"] == 1100 and by_model["m2"]["costUsd"] == 0.002
    by_tenant = {u["key"]: u for u in gql["byTenant"]}
    assert by_tenant["t1"]["tasks"] == 1 and by_tenant["platform"]["tasks"] == 2

    for bad in (-1, 8761, "x"):
        response = await admin.http.delete(f"{LLM}/stats", params={"older_than_hours": bad})
        assert response.status_code == 422
    # clearing with a 48 h cut-off: totals reset, the 100 h task goes, the rest stays
    response = await admin.http.delete(f"{LLM}/stats", params={"older_than_hours": 48})
    assert response.status_code == 204 and response.content == b""
    data = (await admin.http.get(f"{LLM}/stats")).json()["data"]
    assert data["total_tokens"] == 0 and data["total_cost_usd"] == 0
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        left = set((await session.execute(select(Task.id))).scalars())
    assert left == {fresh, mid, old_queued, old_running}
    # the default cut-off is 24 h
    assert (await admin.http.delete(f"{LLM}/stats")).status_code == 204
    async with sessionmaker() as session:
        left = set((await session.execute(select(Task.id))).scalars())
    assert left == {fresh, old_queued, old_running}
    assert old not in left


async def test_seed_000_task_endpoints(
    admin: GraphQLClient, engine: AsyncEngine, client_for: Callable[..., GraphQLClient]
) -> None:
    running = await make_llm_task(engine, status="RUNNING", hours_ago=0.1)
    queued = await make_llm_task(engine, status="QUEUED", hours_ago=0.05)
    done = await make_llm_task(engine, status="COMPLETED", hours_ago=0.2)
    http = admin.http

    listing = (await http.get(f"{LLM}/tasks")).json()
    assert set(listing) == {"data"}
    by_id = {t["task_id"]: t for t in listing["data"]}
    assert set(by_id) == {str(running), str(queued)}  # finished tasks are excluded
    assert list(by_id[str(running)]) == [
        "task_id",
        "queue",
        "operation",
        "status",
        "priority",
        "created_at",
        "started_at",
        "metadata",
        "attempts",
    ]
    assert by_id[str(running)]["status"] == "running"
    assert by_id[str(queued)]["status"] == "queued" and "started_at" not in by_id[str(queued)]
    assert by_id[str(queued)]["priority"] == "50" and by_id[str(queued)]["attempts"] == "0"
    assert by_id[str(queued)]["metadata"] == "{}"
    assert by_id[str(queued)]["created_at"].endswith("+00:00")

    detail = (await http.get(f"{LLM}/tasks/{done}")).json()["data"]
    assert set(detail) == {
        "task_id",
        "queue",
        "operation",
        "status",
        "priority",
        "created_at",
        "started_at",
        "data",
        "metadata",
        "result_ttl",
        "attempts",
    }
    assert detail["status"] == "completed" and detail["result_ttl"] == "3600"
    assert detail["data"] == '{"prompt": "p", "task_type": "CHAT"}'

    assert (await http.get(f"{LLM}/tasks/{uuid.uuid4()}")).status_code == 404
    assert (await http.get(f"{LLM}/tasks/nope")).status_code == 404  # a string id: not found
    # a task that is not an LLM task is not found here
    echo = await admin.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
    assert (await http.get(f"{LLM}/tasks/{echo['submitTask']['task']['id']}")).status_code == 404

    # cancelling: 204 with an empty body; finished or unknown tasks are a 400
    viewer = client_for("viewer")
    assert (await viewer.http.delete(f"{LLM}/tasks/{queued}")).status_code == 403
    response = await http.delete(f"{LLM}/tasks/{queued}")
    assert response.status_code == 204 and response.content == b""
    for task_id in (queued, done, uuid.uuid4()):
        response = await http.delete(f"{LLM}/tasks/{task_id}")
        assert response.status_code == 400
        assert response.json() == {
            "detail": "Task could not be cancelled (not found or already completed)"
        }

    again = await make_llm_task(engine, status="QUEUED", hours_ago=0)
    bulk = (await http.delete(f"{LLM}/tasks")).json()
    assert bulk == {
        "data": {"cancelled": 2, "message": "Task cancellation requested for LLM queue"}
    }
    assert (await admin.data("Task", id=str(again)))["task"]["status"] == "CANCELLED"
    assert (await admin.data("Task", id=str(running)))["task"]["cancelRequestedAt"]


async def test_stats_shape_semaphore_clear_and_roles(
    admin: GraphQLClient, client_for: Callable[..., GraphQLClient]
) -> None:
    data = (await admin.http.get(f"{LLM}/stats")).json()["data"]
    assert list(data) == [
        "queues",
        "total_queued",
        "total_cost_usd",
        "total_input_tokens",
        "total_output_tokens",
        "total_tokens",
        "estimated_completion_time_seconds",
        "estimated_completion_time_human",
        "estimated_completion_times_human",
        "semaphore_stats",
    ]
    assert [q["queue"] for q in data["queues"]][:2] == ["llm", "operations"]
    assert list(data["queues"][0]) == [
        "queue",
        "queued",
        "running",
        "workers",
        "max_depth",
        "depth_percent",
        "total_input_tokens",
        "total_output_tokens",
        "total_cost_usd",
    ]
    assert set(data["estimated_completion_times_human"]) >= {"llm", "operations"}
    assert data["estimated_completion_time_human"] == "0s"
    assert list(data["semaphore_stats"]) == [
        "max_concurrent",
        "reserved_high_priority",
        "active_count",
        "active_high_priority",
        "active_low_priority",
        "waiting_high_priority",
        "waiting_low_priority",
        "total_high_priority",
        "total_low_priority",
        "avg_wait_time_high",
        "avg_wait_time_low",
    ]

    cleared = (await admin.http.delete(f"{LLM}/semaphore")).json()
    assert cleared == {
        "data": {"high_priority_cleared": 0, "low_priority_cleared": 0, "total_cleared": 0}
    }
    operator = client_for("ai_admin")
    assert (await operator.http.delete(f"{LLM}/semaphore")).status_code == 403
    assert (await operator.http.delete(f"{LLM}/stats")).status_code == 403
    assert (await operator.http.delete(f"{LLM}/tasks")).status_code == 200
    viewer = client_for("viewer")
    assert (await viewer.http.delete(f"{LLM}/tasks")).status_code == 403
    body = await operator.execute("ClearLlmStats", olderThanHours=24)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = (await admin.data("ClearLlmStats", olderThanHours=9000))["clearLlmStats"]
    assert bad["errors"][0]["field"] == "olderThanHours"
    sem = (await admin.data("ClearLlmSemaphore"))["clearLlmSemaphore"]
    assert sem["totalCleared"] == 0


async def test_drain_estimate_uses_recent_durations(
    admin: GraphQLClient, engine: AsyncEngine, worker: Proc
) -> None:
    # recent LLM tasks on the llm queue took 30 s each; 5 are queued; no worker serves it here
    for _ in range(3):
        await make_llm_task(engine, status="COMPLETED", hours_ago=0.5, queue="drainq")
    for _ in range(5):
        await make_llm_task(engine, status="QUEUED", hours_ago=0, queue="drainq")
    data = (await admin.http.get(f"{LLM}/stats")).json()["data"]
    # 5 queued x 30 s / effective concurrency 1 (no live worker on the queue)
    assert data["estimated_completion_times_human"]["drainq"] == "2m 30s"
    q = {q["queue"]: q for q in data["queues"]}["drainq"]
    assert q["queued"] == 5 and q["depth_percent"] == 5.0 and q["workers"] == 0
    # overall: the same work through the semaphore (4 slots) on the workers serving these
    # queues (worker-main, concurrency 10): ceil(150 s / 4)
    assert data["estimated_completion_time_seconds"] == 38
    assert data["estimated_completion_time_human"] == "38s"


def test_human_durations() -> None:
    assert [human_duration(s) for s in (0, 45, 150, 3900, 93600)] == [
        "0s",
        "45s",
        "2m 30s",
        "1h 5m",
        "1d 2h",
    ]


async def test_llm_stats_subscription_pushes_on_change(admin: GraphQLClient) -> None:
    async with admin.subscribe("LlmStatsLive") as sub:
        first = (await sub.next())["llmStats"]
        assert first["totalQueued"] == 0
        for i in range(5):  # a burst of changes; the stream ends at the final figure
            await admin.data(
                "SubmitTask",
                input={
                    "operation": "chat_completion",
                    "queue": "parked",
                    "input": {"prompt": str(i)},
                },
            )
        seen = 0
        while seen < 5:
            seen = (await sub.next())["llmStats"]["totalQueued"]
        assert seen == 5


async def test_503_while_redis_is_down_then_recovery(
    env: dict[str, str], logs: Path, admin: GraphQLClient, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path, persist=False)
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    proc, base = start_server({**env, "OPSGRAPH_REDIS_URL": redis.url}, logs)
    try:
        async with rest_client(base, admin.token) as http:
            assert (await http.get(f"{LLM}/stats")).status_code == 200
            redis.stop()
            response = await http.get(f"{LLM}/stats")
            assert response.status_code == 503
            assert response.json() == {"detail": "LLM queue service unavailable"}
            assert (await http.get(f"{LLM}/tasks")).status_code == 200  # PostgreSQL only
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/healthz")).status_code == 200
            redis = start_redis(tmp_path, persist=False, port=port)
            await wait_for(
                lambda: http.get(f"{LLM}/stats"),
                until=lambda response: response.status_code == 200,
                timeout=5,
                what="the LLM stats to answer again once Redis is back",
            )
            assert (await http.get("/readyz")).status_code == 200
    finally:
        proc.stop()
        redis.stop()


async def test_503_while_postgres_is_unreachable(
    env: dict[str, str], logs: Path, admin: GraphQLClient
) -> None:
    from tests.processes import spawn_server

    dead_db = "postgresql://postgres@127.0.0.1:1/nowhere"
    proc, base = spawn_server({**env, "OPSGRAPH_DATABASE_URL": dead_db}, logs)
    try:
        async with GraphQLClient(base, admin.token) as client:
            http = client.http

            async def alive() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:  # not listening yet
                    return False

            await wait_for(alive, timeout=30, what="the API process to answer /healthz")
            response = await http.get(f"{LLM}/stats")
            assert response.status_code == 503
            assert response.json() == {"detail": "LLM queue service unavailable"}
            assert (await http.get("/api/v1/monitoring/tasks")).status_code == 503
            gql = await client.query("{ tasks { totalCount } }")
            assert gql["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["postgres"].startswith("unreachable")
    finally:
        proc.stop()
