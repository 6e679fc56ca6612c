"""End to end: real server and worker processes, GraphQL over HTTP and websockets, REST views."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc, start_server


def echo_input(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "taskType": "echo",
        "queue": "default",
        "input": {"hello": "world"},
        "config": {"value": 42, "simulate": {"latency_ms": 200}},
        "originInstance": "cam-7",
        "originZone": "eu-1",
        "originReference": "ref-1",
    }
    base.update(overrides)
    return base


async def test_submit_is_seen_live_and_through_rest(admin: GraphQLClient, worker: Proc) -> None:
    # given a subscription to the default queue
    async with admin.subscribe("TaskUpdated", queue="default") as sub:
        # when a task is submitted through GraphQL
        data = await admin.data("SubmitTask", input=echo_input())
        payload = data["submitTask"]
        assert payload["errors"] == []
        task_id = payload["task"]["id"]
        assert payload["task"]["status"] == "QUEUED"
        # then the subscription sees QUEUED -> RUNNING -> COMPLETED for it, in order
        seen = []
        while not seen or seen[-1] != "COMPLETED":
            event = (await sub.next(timeout=20))["taskUpdated"]
            assert event["id"] == task_id
            seen.append(event["status"])
        changes = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
        assert changes == ["QUEUED", "RUNNING", "COMPLETED"]
        assert seen.count("RUNNING") == 2, "the halfway progress report is an event too"
        assert event["result"] == {"input": {"hello": "world"}, "value": 42}

    task = (await admin.data("Task", id=task_id))["task"]
    assert task["attempts"] == 1 and task["workerName"] == "worker-main"
    assert [t["toStatus"] for t in task["transitions"]] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert task["durationMs"] >= 200
    assert task["progress"] == 100.0
    assert [p["progress"] for p in task["progressHistory"]] == [50.0, 100.0]

    # and the REST shim of seed 001 shows the same task in its own words
    rest = admin.http
    listing = (await rest.get("/api/v1/monitoring/tasks")).json()
    assert listing["total"] == 1 and listing["page"] == 1 and listing["pages"] == 1
    item = listing["items"][0]
    assert set(item) == {
        "id",
        "task_type",
        "provider_type",
        "status",
        "progress",
        "origin_instance",
        "origin_zone",
        "origin_tenant_id",
        "created_at",
        "started_at",
        "completed_at",
        "duration_ms",
        "has_error",
    }
    assert item["id"] == task_id and item["status"] == "COMPLETED"
    assert item["task_type"] == "ECHO" and item["origin_instance"] == "cam-7"
    assert item["has_error"] is False and item["duration_ms"] >= 200

    detail = (await rest.get(f"/api/v1/monitoring/tasks/{task_id}")).json()
    assert detail["queue_name"] == "default" and detail["priority"] == 50
    assert detail["origin_reference"] == "ref-1" and detail["is_resumed"] is False
    assert detail["executor_instance"] == "worker-main"
    assert detail["task_data"]["result"] == {"input": {"hello": "world"}, "value": 42}
    assert detail["errors"] is None and detail["retry_count"] == 0

    media = (await rest.get(f"/api/v1/monitoring/tasks/{task_id}/media")).json()
    assert media == {"task_id": task_id, "inputs": [], "outputs": []}


async def test_queued_then_running_status_words(admin: GraphQLClient, worker: Proc) -> None:
    data = await admin.data(
        "SubmitTask", input=echo_input(config={"simulate": {"latency_ms": 1500}})
    )
    task_id = data["submitTask"]["task"]["id"]
    await wait_for_status(admin, task_id, {"RUNNING"})
    item = (await admin.http.get("/api/v1/monitoring/tasks", params={"status": "EXECUTING"})).json()
    assert [i["id"] for i in item["items"]] == [task_id]
    await wait_for_status(admin, task_id, {"COMPLETED"})


async def test_llm_chat_records_tokens_cost_and_provider(
    admin: GraphQLClient, worker: Proc
) -> None:
    data = await admin.data(
        "SubmitTask",
        input={
            "operation": "chat_completion",
            "input": {"prompt": "say hi"},
            "config": {"simulate": {"latency_ms": 5, "input_tokens": 1000, "output_tokens": 2000}},
        },
    )
    task_id = data["submitTask"]["task"]["id"]
    assert data["submitTask"]["task"]["queue"] == "llm"
    task = await wait_for_status(admin, task_id, {"COMPLETED"})
    assert task["provider"] == "simulated" and task["model"] == "simulated-chat"
    assert (task["inputTokens"], task["outputTokens"]) == (1000, 2000)
    # 1k input at 0.0005 + 2k output at 0.0015 per 1k tokens
    assert abs(task["costUsd"] - 0.0035) < 1e-9
    assert task["result"]["content"].startswith("[simulated]")

    embed = await admin.data(
        "SubmitTask", input={"operation": "generate_embedding", "input": {"input": ["a b", "c"]}}
    )
    done = await wait_for_status(admin, embed["submitTask"]["task"]["id"], {"COMPLETED"})
    assert len(done["result"]["embeddings"]) == 2 and done["inputTokens"] == 3


async def test_llm_server_create_task_answers_with_the_result(
    admin: GraphQLClient, worker: Proc
) -> None:
    response = await admin.http.post("/api/v1/tasks", json={"prompt": "What is 2+2?"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task_id", "status", "result", "error"}
    assert body["status"] == "Completed" and body["error"] is None
    assert "What is 2+2?" in body["result"]
    task = (await admin.data("Task", id=body["task_id"]))["task"]
    assert task["metadata"] == {"profile": "General", "role": "Chat-Agent", "api": "003"}
    assert task["input"]["messages"][0]["role"] == "system"

    metrics = (await admin.http.get("/api/v1/metrics")).json()
    assert metrics["server_status"] == "online"
    assert metrics["total_requests"] == 1 and metrics["success_rate"] == 100.0
    assert metrics["queue_length"] == 0 and metrics["active_tasks"] == 0
    assert metrics["llm_status"] == {"simulated-chat": "online"}
    assert metrics["average_response_time"] is not None
    # the one task's cost (its tokens at the price table's rates), to the figure's six places
    assert task["costUsd"] > 0 and metrics["api_costs"] == round(task["costUsd"], 6)


async def test_llm_server_answers_processing_when_the_wait_runs_out(
    env: dict[str, str], logs: Path, admin: GraphQLClient, worker: Proc
) -> None:
    # given an API process that waits 0 s for results
    proc, base = start_server({**env, "OPSGRAPH_SYNC_WAIT_SECONDS": "0"}, logs)
    try:
        async with httpx.AsyncClient(base_url=base, headers=admin.http.headers) as http:
            response = await http.post(
                "/api/v1/tasks", json={"prompt": "slow", "profile": "Research", "role": "Analyst"}
            )
    finally:
        proc.stop()
    body = response.json()
    # then it answers Processing with the task id, and the task still completes
    assert body["status"] == "Processing" and body["result"] is None
    task = await wait_for_status(admin, body["task_id"], {"COMPLETED"})
    assert task["metadata"]["role"] == "Analyst"


async def test_stats_queues_and_workers(admin: GraphQLClient, worker: Proc) -> None:
    ids = []
    for zone in ("eu-1", "eu-1", "us-2"):
        data = await admin.data(
            "SubmitTask", input=echo_input(originZone=zone, config={"simulate": {"latency_ms": 1}})
        )
        ids.append(data["submitTask"]["task"]["id"])
    for task_id in ids:
        await wait_for_status(admin, task_id, {"COMPLETED"})

    rest = admin.http
    stats = (await rest.get("/api/v1/monitoring/stats")).json()
    assert stats == {
        "total_tasks": 3,
        "by_status": {"COMPLETED": 3},
        "by_provider": {"SIMULATED": 3},
        "by_task_type": {"ECHO": 3},
        "tasks_last_hour": 3,
        "tasks_last_24h": 3,
    }
    zoned = (await rest.get("/api/v1/monitoring/stats", params={"origin_zone": "us-2"})).json()
    assert zoned["total_tasks"] == 1

    queues = (await rest.get("/api/v1/monitoring/queues")).json()
    by_name = {q["name"]: q for q in queues["queues"]}
    assert {"llm", "operations", "default"} <= set(by_name)
    assert by_name["default"]["tasks_completed_last_hour"] == 3
    assert by_name["default"]["active_workers"] >= 1
    assert by_name["default"]["avg_wait_time_ms"] is not None
    assert queues["total_pending"] == 0 and "timestamp" in queues

    workers = (await rest.get("/api/v1/monitoring/workers")).json()
    main = next(w for w in workers["workers"] if w["name"] == "worker-main")
    assert main["concurrency"] == 10 and main["queues"] == ["llm", "operations", "default"]
    assert main["tasks_completed_total"] >= 3 and main["memory_mb"] > 0
    assert workers["total_capacity"] >= 10

    health = (await rest.get("/api/v1/monitoring/workers/health")).json()
    assert health["healthy"] is True
    assert {"llm", "operations", "default"} <= set(health["queues_with_workers"])

    gql = await admin.data("TaskStats", originZone="eu-1")
    assert gql["taskStats"]["totalTasks"] == 2
    wh = await admin.data("WorkerHealth")
    assert wh["workerHealth"]["healthy"] is True


async def test_queue_stats_subscription_pushes_changes(admin: GraphQLClient) -> None:
    async with admin.subscribe("QueueStatsLive") as sub:
        first = (await sub.next())["queueStats"]
        assert first["totalPending"] == 0
        # a queue no worker consumes keeps the task pending
        await admin.data("SubmitTask", input=echo_input(queue="parked"))
        update = (await sub.next())["queueStats"]
        parked = {q["name"]: q for q in update["queues"]}["parked"]
        assert parked["depth"] == 1 and update["totalPending"] == 1


async def test_many_subscribers_get_every_task_event(admin: GraphQLClient, worker: Proc) -> None:
    async def watch() -> list[str]:
        async with admin.subscribe("TaskUpdated", queue="operations") as sub:
            ready.release()
            seen: list[str] = []
            while not seen or seen[-1] != "COMPLETED":
                status = (await sub.next())["taskUpdated"]["status"]
                if not seen or seen[-1] != status:
                    seen.append(status)
            return seen

    ready = asyncio.Semaphore(0)
    watchers = [asyncio.create_task(watch()) for _ in range(5)]
    for _ in watchers:
        await asyncio.wait_for(ready.acquire(), 10)
    await admin.data("SubmitTask", input=echo_input(queue="operations"))
    results = await asyncio.wait_for(asyncio.gather(*watchers), 20)
    assert results == [["QUEUED", "RUNNING", "COMPLETED"]] * 5


async def test_prometheus_metrics(admin: GraphQLClient, worker: Proc, server: str) -> None:
    data = await admin.data(
        "SubmitTask",
        input={
            "operation": "chat_completion",
            "input": {"prompt": "count me"},
            "config": {"simulate": {"latency_ms": 1, "input_tokens": 7, "output_tokens": 3}},
        },
    )
    await wait_for_status(admin, data["submitTask"]["task"]["id"], {"COMPLETED"})
    async with httpx.AsyncClient(base_url=server) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401
    text = (await admin.http.get("/metrics")).text
    assert 'opsgraph_tasks{queue="llm",status="COMPLETED"} 1.0' in text
    assert 'opsgraph_llm_tokens{kind="input"} 7.0' in text
    assert "opsgraph_workers " in text and "opsgraph_process_subscriptions" in text


async def test_shared_subscription_survives_a_subscriber_leaving(admin: GraphQLClient) -> None:
    # two identical event subscriptions share one execution in the API process
    async with admin.subscribe("TaskUpdated", queue="parked") as stays:
        async with admin.subscribe("TaskUpdated", queue="parked") as leaves:
            first = await admin.data("SubmitTask", input=echo_input(queue="parked"))
            first_id = first["submitTask"]["task"]["id"]
            assert (await leaves.next())["taskUpdated"]["id"] == first_id
            assert (await stays.next())["taskUpdated"]["id"] == first_id
        # the first subscriber is gone; the other still gets every change
        second = await admin.data("SubmitTask", input=echo_input(queue="parked"))
        assert (await stays.next())["taskUpdated"]["id"] == second["submitTask"]["task"]["id"]
    # and a newcomer after everyone left starts a fresh shared run
    async with admin.subscribe("TaskUpdated", queue="parked") as newcomer:
        third = await admin.data("SubmitTask", input=echo_input(queue="parked"))
        assert (await newcomer.next())["taskUpdated"]["id"] == third["submitTask"]["task"]["id"]


def _delivered(metrics: str, path: str) -> float:
    line = f'opsgraph_process_subscription_results{{path="{path}"}} '
    return float(next(x for x in metrics.splitlines() if x.startswith(line)).split()[-1])


async def test_shared_results_are_written_straight_to_each_socket(admin: GraphQLClient) -> None:
    before = _delivered((await admin.http.get("/metrics")).text, "direct")
    # three identical subscribers, each on its own websocket
    async with (
        admin.subscribe("TaskUpdated", queue="parked") as a,
        admin.subscribe("TaskUpdated", queue="parked") as b,
        admin.subscribe("TaskUpdated", queue="parked") as c,
    ):
        ids = []
        for _ in range(2):
            done = await admin.data("SubmitTask", input=echo_input(queue="parked"))
            ids.append(done["submitTask"]["task"]["id"])
        # each gets both results, whole and in order (its client checks every frame)
        for feed in (a, b, c):
            got = [(await feed.next())["taskUpdated"] for _ in ids]
            assert [t["id"] for t in got] == ids and {t["status"] for t in got} == {"QUEUED"}
    # and the API process framed them once each and wrote them to the sockets directly
    after = _delivered((await admin.http.get("/metrics")).text, "direct")
    assert after - before >= 6


async def test_shared_snapshot_subscriptions_start_with_current_state(
    admin: GraphQLClient,
) -> None:
    async with admin.subscribe("QueueStatsLive") as first:
        assert (await first.next())["queueStats"]["totalPending"] == 0
        # a second identical subscriber joins the running stream: it starts with the state
        async with admin.subscribe("QueueStatsLive") as second:
            assert (await second.next())["queueStats"]["totalPending"] == 0
            await admin.data("SubmitTask", input=echo_input(queue="parked"))
            assert (await first.next())["queueStats"]["totalPending"] == 1
            assert (await second.next())["queueStats"]["totalPending"] == 1

    data = await admin.data("SubmitTask", input=echo_input(queue="parked"))
    task_id = data["submitTask"]["task"]["id"]
    async with (
        admin.subscribe("TaskUpdated", id=task_id) as a,
        admin.subscribe("TaskUpdated", id=task_id) as b,
    ):
        assert (await a.next())["taskUpdated"]["status"] == "QUEUED"
        assert (await b.next())["taskUpdated"]["status"] == "QUEUED"
        await admin.data("CancelTask", id=task_id)
        assert (await a.next())["taskUpdated"]["status"] == "CANCELLED"
        assert (await b.next())["taskUpdated"]["status"] == "CANCELLED"
