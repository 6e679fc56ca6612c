"""Cancel, retries with backoff, dead-lettering, manual retry and webhooks, end to end."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from app.services.webhooks.deliveries import SIGNATURE_HEADER
from tests.client import GraphQLClient
from tests.conftest import WEBHOOK_SECRET, wait_for_status
from tests.processes import Proc
from tests.receiver import Received, Receiver
from tests.signatures import signed_by


def echo(**config: Any) -> dict[str, Any]:
    return {"taskType": "echo", "queue": "default", "input": {"n": 1}, "config": config}


async def test_cancel_queued_task_is_immediate(admin: GraphQLClient) -> None:
    # a queue without workers keeps the task QUEUED
    data = await admin.data("SubmitTask", input={**echo(), "queue": "parked"})
    task_id = data["submitTask"]["task"]["id"]
    result = (await admin.data("CancelTask", id=task_id))["cancelTask"]
    assert result["errors"] == [] and result["task"]["status"] == "CANCELLED"
    # cancelling again is an invalid transition, reported as data
    again = (await admin.data("CancelTask", id=task_id))["cancelTask"]
    assert again["task"] is None
    assert again["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_cancel_running_task_stops_the_work(admin: GraphQLClient, worker: Proc) -> None:
    data = await admin.data("SubmitTask", input=echo(simulate={"latency_ms": 30_000}))
    task_id = data["submitTask"]["task"]["id"]
    await wait_for_status(admin, task_id, {"RUNNING"})
    result = (await admin.data("CancelTask", id=task_id))["cancelTask"]
    # still RUNNING until the worker acknowledges
    assert result["task"]["status"] == "RUNNING" and result["task"]["cancelRequestedAt"]
    task = await wait_for_status(admin, task_id, {"CANCELLED"}, timeout=10)
    # stopped long before the 30 s of work would have finished
    assert task["result"] is None
    assert [
        t["toStatus"] for t in (await admin.data("Task", id=task_id))["task"]["transitions"]
    ] == ["QUEUED", "RUNNING", "CANCELLED"]


async def test_retries_then_dead_letter_with_errors_kept(
    admin: GraphQLClient, worker: Proc
) -> None:
    data = await admin.data("SubmitTask", input=echo(simulate={"fail_attempts": 99}))
    task_id = data["submitTask"]["task"]["id"]
    task = await wait_for_status(admin, task_id, {"FAILED"})
    # seed 002's default: 3 retries after the first attempt
    assert task["attempts"] == 4 and task["retryCount"] == 3 and task["maxAttempts"] == 4
    assert task["deadLettered"] is True
    assert len(task["errors"]) == 4 and "attempt 4" in task["errors"][-1]
    full = (await admin.data("Task", id=task_id))["task"]
    statuses = [t["toStatus"] for t in full["transitions"]]
    assert statuses == ["QUEUED"] + ["RUNNING", "QUEUED"] * 3 + ["RUNNING", "FAILED"]
    # backoff was honoured: retry n waited at least min(0.05 s x 2^(n-1), 0.2 s) (test
    # settings; jitter only adds) between going back to QUEUED and running again
    at = [datetime.fromisoformat(t["at"]) for t in full["transitions"]]
    for n, i in enumerate(range(2, len(at) - 1, 2), start=1):
        assert full["transitions"][i]["toStatus"] == "QUEUED"
        waited = (at[i + 1] - at[i]).total_seconds()
        assert waited >= min(0.05 * 2 ** (n - 1), 0.2) - 0.005, (n, waited)
    assert any(line["level"] == "error" for line in full["logs"])

    rest = (await admin.http.get(f"/api/v1/monitoring/tasks/{task_id}")).json()
    assert rest["status"] == "FAILED" and len(rest["errors"]) == 4 and rest["retry_count"] == 3
    assert rest["task_data"]["dead_lettered"] is True


async def test_fatal_error_is_not_retried(admin: GraphQLClient, worker: Proc) -> None:
    data = await admin.data(
        "SubmitTask", input=echo(simulate={"fail_attempts": 1, "error": "fatal"})
    )
    task = await wait_for_status(admin, data["submitTask"]["task"]["id"], {"FAILED"})
    assert task["attempts"] == 1 and task["deadLettered"] is True


async def test_transient_failure_recovers_within_retries(
    admin: GraphQLClient, worker: Proc
) -> None:
    data = await admin.data("SubmitTask", input=echo(simulate={"fail_attempts": 2}))
    task_id = data["submitTask"]["task"]["id"]
    task = await wait_for_status(admin, task_id, {"COMPLETED"})
    assert task["attempts"] == 3 and task["retryCount"] == 2 and len(task["errors"]) == 2
    assert task["deadLettered"] is False
    # a completed task is final: it cannot be retried
    again = (await admin.data("RetryTask", id=task_id))["retryTask"]
    assert again["task"] is None and again["errors"][0]["code"] == "INVALID_TRANSITION"


async def test_retry_task_reruns_a_failed_task(admin: GraphQLClient, worker: Proc) -> None:
    data = await admin.data(
        "SubmitTask", input={**echo(simulate={"fail_attempts": 1}), "maxRetries": 0}
    )
    task_id = data["submitTask"]["task"]["id"]
    await wait_for_status(admin, task_id, {"FAILED"})
    retried = (await admin.data("RetryTask", id=task_id))["retryTask"]
    assert retried["errors"] == [] and retried["task"]["status"] == "QUEUED"
    assert retried["task"]["deadLettered"] is False
    # attempt numbering restarts, so fail_attempts=1 fails again: a new budget, same rules
    task = await wait_for_status(admin, task_id, {"FAILED"})
    assert len(task["errors"]) == 2

    unknown = await admin.data("RetryTask", id="00000000-0000-0000-0000-000000000000")
    assert unknown["retryTask"]["errors"][0]["code"] == "NOT_FOUND"


async def test_webhook_is_signed_and_retried(admin: GraphQLClient, worker: Proc) -> None:
    answers = [JSONResponse({"error": "try later"}, status_code=503)]  # then 200s

    def reply(_: Received) -> Response:
        return answers.pop(0) if answers else JSONResponse({"ok": True})

    async with Receiver(reply=reply) as receiver:
        data = await admin.data("SubmitTask", input={**echo(), "webhookUrl": receiver.hook_url})
        task_id = data["submitTask"]["task"]["id"]
        await wait_for_status(admin, task_id, {"COMPLETED"})
        got = await receiver.wait(2, timeout=15)
    # the first delivery was refused (503) and retried once, the same body
    assert len(got) == 2 and got[0].body == got[1].body
    headers, body = got[1].headers, got[1].body
    payload = json.loads(body)
    assert payload["event"] == "task.completed" and payload["task"]["id"] == task_id
    assert headers["x-opsgraph-event"] == "task.completed"
    assert headers[SIGNATURE_HEADER.lower()].startswith("sha256=")
    assert signed_by(WEBHOOK_SECRET, headers, body)
    assert not signed_by("wrong-secret", headers, body)
    assert not signed_by(WEBHOOK_SECRET, headers, body + b" ")
