"""Workflow steps that wait (issue 32): SLEEP, APPROVAL and SIGNAL steps are durable (a row
says what they wait for and until when; no worker holds them), end by time, an operator's
decision or a signal, and move the workflow on as a task's completion does."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.client import GraphQLClient
from tests.processes import Proc
from tests.waiting import wait_for


def echo(step_id: str, *deps: str, **more: Any) -> dict[str, Any]:
    return {
        "stepId": step_id,
        "taskType": "echo",
        "queue": "waitq",
        "dependencies": list(deps),
        "config": {"simulate": {"latency_ms": 0}},
        **more,
    }


async def created(admin: GraphQLClient, *steps: dict[str, Any]) -> str:
    payload = (await admin.data("CreateWorkflow", input={"name": "waits", "steps": list(steps)}))[
        "createWorkflow"
    ]
    assert payload["errors"] == [], payload
    return str(payload["workflow"]["id"])


async def steps_when(
    admin: GraphQLClient, workflow_id: str, until: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        workflow = (await admin.data("Workflow", id=workflow_id))["workflow"]
        return {"workflow": workflow, **{s["stepId"]: s for s in workflow["steps"]}}

    found: dict[str, Any] = await wait_for(read, until=until, what=what)
    return found


async def test_an_approval_survives_its_worker_and_runs_the_next_step_once(
    admin: GraphQLClient,
    spawn_worker: Callable[..., Proc],
    token_for: Callable[..., str],
    server: str,
) -> None:
    first = spawn_worker("worker-wait-1", "waitq", 2)
    workflow_id = await created(
        admin,
        echo("a"),
        {"stepId": "review", "kind": "APPROVAL", "dependencies": ["a"]},
        echo(
            "c",
            "review",
            inputMappings=[{"from_step": "review", "path": "note", "to": "why"}],
        ),
    )
    waiting = await steps_when(
        admin, workflow_id, lambda s: s["review"]["status"] == "RUNNING", "the approval wait"
    )
    assert waiting["review"]["kind"] == "APPROVAL" and waiting["review"]["waitUntil"] is None
    assert waiting["c"]["status"] == "PENDING"
    # the only worker is killed while the step waits; another starts later
    os.kill(first.pid, signal.SIGKILL)
    spawn_worker("worker-wait-2", "waitq", 2)
    # a viewer may not decide; another tenant finds no such workflow
    async with GraphQLClient(server, token_for("viewer")) as viewer:
        denied = await viewer.execute("ApproveStep", workflowId=workflow_id, stepId="review")
        assert [e["extensions"]["code"] for e in denied.get("errors", [])] == ["FORBIDDEN"]
    async with GraphQLClient(server, token_for("tenant_admin", "tenant-x")) as other:
        hidden = await other.data("ApproveStep", workflowId=workflow_id, stepId="review")
        assert [e["code"] for e in hidden["approveStep"]["errors"]] == ["NOT_FOUND"]
    # an operator approves: the step completes, the next one runs once with the note
    approved = await admin.data(
        "ApproveStep", workflowId=workflow_id, stepId="review", note="looks right"
    )
    assert approved["approveStep"]["errors"] == []
    done = await steps_when(
        admin, workflow_id, lambda s: s["workflow"]["status"] == "COMPLETED", "the workflow"
    )
    review = done["review"]
    assert (review["status"], review["decidedBy"], review["decisionNote"]) == (
        "COMPLETED",
        "test",
        "looks right",
    )
    assert done["c"]["task"]["attempts"] == 1 and done["c"]["task"]["input"] == {
        "why": "looks right"
    }
    assert done["c"]["task"]["workerName"] == "worker-wait-2"
    again = await admin.data("ApproveStep", workflowId=workflow_id, stepId="review")
    assert [e["code"] for e in again["approveStep"]["errors"]] == ["INVALID_TRANSITION"]


async def test_a_rejection_fails_the_workflow_with_its_note(admin: GraphQLClient) -> None:
    # beside it, a step waiting for a signal: the failure stops it too
    workflow_id = await created(
        admin,
        {"stepId": "review", "kind": "APPROVAL"},
        {"stepId": "paid", "kind": "SIGNAL", "signal": "payment", "timeoutSeconds": 3600},
        echo("c", "review", "paid"),
    )
    await steps_when(
        admin,
        workflow_id,
        lambda s: s["review"]["status"] == s["paid"]["status"] == "RUNNING",
        "both waits",
    )
    rejected = await admin.data(
        "RejectStep", workflowId=workflow_id, stepId="review", note="wrong numbers"
    )
    assert rejected["rejectStep"]["errors"] == []
    assert rejected["rejectStep"]["workflow"]["status"] == "FAILED"
    assert rejected["rejectStep"]["workflow"]["errorMessage"] == (
        "step 'review' rejected by test: wrong numbers"
    )
    done = await steps_when(admin, workflow_id, lambda s: True, "the workflow")
    assert done["review"]["status"] == "FAILED" and done["c"]["status"] == "CANCELLED"
    assert (done["paid"]["status"], done["paid"]["waitUntil"]) == ("CANCELLED", None)


async def test_a_signal_with_its_payload_feeds_the_next_step(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    spawn_worker("worker-wait-3", "waitq", 2)
    workflow_id = await created(
        admin,
        {"stepId": "paid", "kind": "SIGNAL", "signal": "payment"},
        echo("ship", "paid", inputMappings=[{"from_step": "paid", "path": "amount", "to": "n"}]),
    )
    await steps_when(admin, workflow_id, lambda s: s["paid"]["status"] == "RUNNING", "the wait")
    wrong = await admin.data("SignalWorkflow", workflowId=workflow_id, name="refund")
    assert [e["field"] for e in wrong["signalWorkflow"]["errors"]] == ["name"]
    sent = await admin.data(
        "SignalWorkflow", workflowId=workflow_id, name="payment", payload={"amount": 42}
    )
    assert sent["signalWorkflow"]["errors"] == []
    done = await steps_when(
        admin, workflow_id, lambda s: s["workflow"]["status"] == "COMPLETED", "the workflow"
    )
    assert done["paid"]["result"] == {"amount": 42}
    assert done["ship"]["task"]["input"] == {"n": 42}


async def test_a_sleep_ends_by_time_and_a_wait_times_out(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    spawn_worker("worker-wait-4", "waitq", 2)
    slept = await created(
        admin, {"stepId": "nap", "kind": "SLEEP", "sleepSeconds": 1}, echo("b", "nap")
    )
    timed_out = await created(admin, {"stepId": "ok", "kind": "APPROVAL", "timeoutSeconds": 1})
    approved = await created(
        admin,
        {"stepId": "ok", "kind": "APPROVAL", "timeoutSeconds": 1, "defaultDecision": "APPROVE"},
    )
    done = await steps_when(
        admin, slept, lambda s: s["workflow"]["status"] == "COMPLETED", "the sleep to end"
    )
    nap = done["nap"]
    waited = datetime.fromisoformat(nap["completedAt"]) - datetime.fromisoformat(nap["startedAt"])
    assert waited.total_seconds() >= 1
    assert nap["result"] == {"slept_until": nap["waitUntil"] or nap["result"]["slept_until"]}
    failed = await steps_when(
        admin, timed_out, lambda s: s["workflow"]["status"] == "FAILED", "the timeout"
    )
    assert failed["ok"]["errorMessage"] == "timed out waiting for an approval"
    passed = await steps_when(
        admin, approved, lambda s: s["workflow"]["status"] == "COMPLETED", "the default"
    )
    assert passed["ok"]["decidedBy"] == "timeout"


async def test_waiting_steps_are_checked_naming_the_field(admin: GraphQLClient) -> None:
    for step, field in (
        ({"stepId": "s", "kind": "SLEEP"}, "steps[0].sleep_seconds"),
        ({"stepId": "s", "kind": "SIGNAL"}, "steps[0].signal"),
        ({"stepId": "s", "kind": "APPROVAL", "taskType": "echo"}, "steps[0].task_type"),
        (
            {"stepId": "s", "kind": "SLEEP", "sleepSeconds": 1, "defaultDecision": "APPROVE"},
            "steps[0].default_decision",
        ),
        ({"stepId": "s"}, "steps[0].task_type"),
    ):
        body = await admin.execute("CreateWorkflow", input={"name": "bad", "steps": [step]})
        errors = body["data"]["createWorkflow"]["errors"]
        assert [e["field"] for e in errors] == [field], step
