"""Time (issue 32): tasks that run later. Due times live in PostgreSQL; a ticker in every
worker enqueues what is due, so a delayed task survives a flushed Redis and every worker
being killed, runs once and never before its time."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.waiting import wait_for


def echo(queue: str, **more: Any) -> dict[str, Any]:
    return {"taskType": "echo", "queue": queue, "config": {"simulate": {"latency_ms": 0}}, **more}


async def submitted(admin: GraphQLClient, item: dict[str, Any]) -> dict[str, Any]:
    payload = (await admin.data("SubmitTask", input=item))["submitTask"]
    assert payload["errors"] == [], payload
    task: dict[str, Any] = payload["task"]
    return task


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_delayed_task_survives_a_flushed_redis_and_every_worker_killed(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], redis_client: Redis
) -> None:
    # given a worker on the queue and a task due in 3 s
    first = spawn_worker("worker-later-1", "later", 2, OPSGRAPH_DUE_POLL_SECONDS="0.2")
    task = await submitted(admin, echo("later", delaySeconds=3))
    # then it is stored at once, waiting for its time, with no job in Redis
    stored = (await admin.data("Task", id=task["id"]))["task"]
    assert stored["status"] == "QUEUED" and stored["dueAt"] == stored["runAt"]
    run_at = at(stored["runAt"])
    assert timedelta(seconds=2) < run_at - at(stored["createdAt"]) <= timedelta(seconds=3.5)
    assert not await redis_client.exists(f"arq:job:{task['id']}")
    # when Redis is flushed and the only worker killed before it is due
    os.kill(first.pid, signal.SIGKILL)
    await redis_client.flushdb()
    # and a new worker starts
    spawn_worker("worker-later-2", "later", 2, OPSGRAPH_DUE_POLL_SECONDS="0.2")
    # then it runs once, not before its time, within a second of it
    done = await wait_for_status(admin, task["id"], {"COMPLETED", "FAILED"}, timeout=15)
    assert done["status"] == "COMPLETED" and done["attempts"] == 1
    assert done["workerName"] == "worker-later-2" and done["dueAt"] is None
    assert [t["toStatus"] for t in done["transitions"]] == ["QUEUED", "RUNNING", "COMPLETED"]
    started = at(done["startedAt"])
    assert run_at <= started < run_at + timedelta(seconds=1.5)


async def test_a_task_cancelled_before_its_time_never_runs(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    spawn_worker("worker-later-3", "later", 2, OPSGRAPH_DUE_POLL_SECONDS="0.2")
    cancelled = await submitted(admin, echo("later", delaySeconds=1))
    result = await admin.data("CancelTask", id=cancelled["id"])
    assert result["cancelTask"]["errors"] == []
    # a task due after it runs: the ticker passed the cancelled one's time
    later = await submitted(admin, echo("later", delaySeconds=1.5))
    await wait_for_status(admin, later["id"], {"COMPLETED"}, timeout=15)
    task = (await admin.data("Task", id=cancelled["id"]))["task"]
    assert task["status"] == "CANCELLED" and task["attempts"] == 0 and task["dueAt"] is None
    assert [t["toStatus"] for t in task["transitions"]] == ["QUEUED", "CANCELLED"]


async def test_run_at_in_the_past_runs_now_and_bad_times_are_refused(
    admin: GraphQLClient, worker: Proc
) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    task = await submitted(admin, echo("default", runAt=past))
    done = await wait_for_status(admin, task["id"], {"COMPLETED"})
    assert done["runAt"] == past and done["dueAt"] is None

    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for extra, field in (
        ({"runAt": far}, "runAt"),
        ({"runAt": naive}, "runAt"),
        ({"delaySeconds": -1}, "delaySeconds"),
        ({"delaySeconds": 10, "runAt": soon}, "delaySeconds"),
    ):
        body = await admin.execute("SubmitTask", input=echo("default", **extra))
        errors = body["data"]["submitTask"]["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [(field, "INVALID")], extra
    # REST's bulk submission takes them too, and seed 001's detail shows when it runs
    rest = await admin.http.post(
        "/api/v1/tasks/batch",
        json={"tasks": [{"task_type": "echo", "queue": "nobody", "delay_seconds": 3600}]},
    )
    assert rest.status_code == 202, rest.text
    [task_id] = rest.json()["task_ids"]
    detail = (await admin.http.get(f"/api/v1/monitoring/tasks/{task_id}")).json()
    assert detail["status"] == "PENDING"
    assert detail["task_data"]["due_at"] == detail["task_data"]["run_at"] is not None
    listing = (await admin.http.get("/api/v1/monitoring/tasks")).json()
    assert listing["total"] == 2


async def test_a_workflow_created_to_start_later(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    spawn_worker("worker-later-4", "later", 2, OPSGRAPH_DUE_POLL_SECONDS="0.2")
    step = {"taskType": "echo", "queue": "later", "config": {"simulate": {"latency_ms": 0}}}
    created = await admin.data(
        "CreateWorkflow",
        input={
            "name": "later",
            "delaySeconds": 1.5,
            "steps": [{"stepId": "a", **step}, {"stepId": "b", "dependencies": ["a"], **step}],
        },
    )
    payload = created["createWorkflow"]
    assert payload["errors"] == []
    workflow_id = payload["workflow"]["id"]
    done = await wait_for(
        lambda: admin.data("Workflow", id=workflow_id),
        until=lambda d: d["workflow"]["status"] in ("COMPLETED", "FAILED"),
        what="the workflow to finish",
    )
    workflow = done["workflow"]
    run_at = at(workflow["runAt"])
    assert workflow["status"] == "COMPLETED"
    # its first step waited for the time; the next ran after it, as usual
    first = {s["stepId"]: s for s in workflow["steps"]}["a"]
    assert at(first["startedAt"]) >= run_at
    refused = await admin.data(
        "CreateWorkflow",
        input={"name": "x", "delaySeconds": -5, "steps": [{"stepId": "a", **step}]},
    )
    assert [e["field"] for e in refused["createWorkflow"]["errors"]] == ["delaySeconds"]


async def test_a_failed_task_is_replayed_with_an_edited_input(
    admin: GraphQLClient, worker: Proc
) -> None:
    # it fails every attempt made in the next 2 s (the simulated provider's fail_until)
    until = datetime.now(UTC).timestamp() + 2
    failing = {"simulate": {"fail_until": until, "error": "fatal", "latency_ms": 0}}
    task = await submitted(
        admin, {"taskType": "echo", "queue": "default", "input": {"n": 1}, "config": failing}
    )
    await wait_for_status(admin, task["id"], {"FAILED"})
    await wait_for(
        lambda: datetime.now(UTC).timestamp(), until=lambda t: t > until, what="the failures' end"
    )
    # an input its type refuses is refused naming the field, and nothing changes
    llm = await submitted(admin, {"taskType": "llm", "queue": "parked", "input": {"prompt": "p"}})
    await admin.data("CancelTask", id=llm["id"])
    refused = (await admin.data("RetryTask", id=llm["id"], input={"nothing": 1}))["retryTask"]
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("input", "INVALID")]
    assert (await admin.data("Task", id=llm["id"]))["task"]["status"] == "CANCELLED"
    # replayed with a new input: it runs with it, its history kept
    replayed = (await admin.data("RetryTask", id=task["id"], input={"n": 2}))["retryTask"]
    assert replayed["errors"] == []
    done = await wait_for_status(admin, task["id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED" and done["input"] == {"n": 2}
    assert done["result"]["input"] == {"n": 2}
    assert [t["toStatus"] for t in done["transitions"]] == [
        "QUEUED",
        "RUNNING",
        "FAILED",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
    ]
    [line] = [x for x in done["logs"] if x["message"].startswith("retried with a new input")]
    assert line["fields"] == {"replaced_input": {"n": 1}}


async def test_a_failed_workflow_is_retried_with_an_edited_step_input(
    admin: GraphQLClient, worker: Proc
) -> None:
    # step a fails every attempt made in the next 2 s; b takes a's result through a mapping
    until = datetime.now(UTC).timestamp() + 2
    failing = {"simulate": {"fail_until": until, "error": "fatal", "latency_ms": 0}}
    quick = {"simulate": {"latency_ms": 0}}
    created = await admin.data(
        "CreateWorkflow",
        input={
            "name": "replayed",
            "steps": [
                {"stepId": "a", "taskType": "echo", "input": {"n": 1}, "config": failing},
                {
                    "stepId": "b",
                    "taskType": "echo",
                    "dependencies": ["a"],
                    "inputMappings": [{"from_step": "a", "path": "input.n", "to": "n"}],
                    "config": quick,
                },
                {"stepId": "c", "taskType": "echo", "input": {"c": 1}, "config": quick},
            ],
        },
    )
    workflow_id = created["createWorkflow"]["workflow"]["id"]
    failed = await wait_for(
        lambda: admin.data("Workflow", id=workflow_id),
        until=lambda d: (
            d["workflow"]["status"] == "FAILED"
            and all(s["status"] != "RUNNING" for s in d["workflow"]["steps"])
        ),
        what="the workflow to fail",
    )
    first_task = {s["stepId"]: s for s in failed["workflow"]["steps"]}["a"]["task"]
    await wait_for(
        lambda: datetime.now(UTC).timestamp(), until=lambda t: t > until, what="the failures' end"
    )

    async def refused(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
        payload = (await admin.data("RetryWorkflow", id=workflow_id, steps=steps))["retryWorkflow"]
        return [(e["field"], e["code"]) for e in payload["errors"]]

    # a step that does not run again (c completed), an unknown one, one given twice: refused
    # naming the field, and nothing changes
    assert await refused([{"stepId": "c", "input": {"c": 2}}]) == [("steps[0].step_id", "INVALID")]
    assert await refused([{"stepId": "zz", "input": {}}]) == [("steps[0].step_id", "INVALID")]
    twice = [{"stepId": "a", "input": {"n": 2}}, {"stepId": "a", "input": {"n": 3}}]
    assert await refused(twice) == [("steps[1].step_id", "INVALID")]
    unchanged = (await admin.data("Workflow", id=workflow_id))["workflow"]
    assert unchanged["status"] == "FAILED"
    assert {s["stepId"]: s["input"] for s in unchanged["steps"]}["a"] == {"n": 1}
    # retried with a new input for a: a runs with it, b takes it through its mapping
    retried = await admin.data(
        "RetryWorkflow", id=workflow_id, steps=[{"stepId": "a", "input": {"n": 2}}]
    )
    assert retried["retryWorkflow"]["errors"] == []
    done = await wait_for(
        lambda: admin.data("Workflow", id=workflow_id),
        until=lambda d: d["workflow"]["status"] in ("COMPLETED", "FAILED"),
        what="the retried workflow to finish",
    )
    steps = {s["stepId"]: s for s in done["workflow"]["steps"]}
    assert done["workflow"]["status"] == "COMPLETED"
    assert steps["a"]["input"] == {"n": 2} and steps["a"]["task"]["input"] == {"n": 2}
    assert steps["b"]["task"]["input"] == {"n": 2}
    # the failed attempt's task keeps the input it ran with
    old = (await admin.data("Task", id=first_task["id"]))["task"]
    assert old["status"] == "FAILED" and old["input"] == {"n": 1}


async def test_a_dead_letter_is_requeued_with_an_edited_input(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    spawn_worker("worker-replays", "replays", 2)
    until = datetime.now(UTC).timestamp() + 2
    failing = {"simulate": {"fail_until": until, "error": "fatal", "latency_ms": 0}}
    task = await submitted(
        admin, {"taskType": "echo", "queue": "replays", "input": {"n": 1}, "config": failing}
    )
    dead = await wait_for_status(admin, task["id"], {"FAILED"})
    assert dead["deadLettered"] is True
    await wait_for(
        lambda: datetime.now(UTC).timestamp(), until=lambda t: t > until, what="the failures' end"
    )

    async def requeue(**arguments: Any) -> dict[str, Any]:
        payload: dict[str, Any] = (
            await admin.data("RequeueDlqJob", queue="dlq:replays", **arguments)
        )["requeueDlqJob"]
        return payload

    # an edited input names the dead letter it replaces; an id not in that DLQ is not found
    unnamed = await requeue(input={"n": 2})
    assert [(e["field"], e["code"]) for e in unnamed["errors"]] == [("task_id", "INVALID")]
    other = await requeue(taskId="00000000-0000-4000-8000-000000000000", input={"n": 2})
    assert [(e["field"], e["code"]) for e in other["errors"]] == [("task_id", "NOT_FOUND")]
    assert (await admin.data("Task", id=task["id"]))["task"]["deadLettered"] is True
    # requeued with its new input: it runs with it; the one it replaced stays in its log
    requeued = await requeue(taskId=task["id"], input={"n": 2})
    assert requeued["errors"] == [] and requeued["taskIds"] == [task["id"]]
    assert requeued["remainingCount"] == 0
    done = await wait_for_status(admin, task["id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED" and done["result"]["input"] == {"n": 2}
    [line] = [x for x in done["logs"] if x["message"].startswith("retried with a new input")]
    assert line["fields"] == {"replaced_input": {"n": 1}}
    assert [t["reason"] for t in done["transitions"]][
        3
    ] == "requeued from dlq:replays, with a new input"
