"""Idempotent submission (issue 33): a client that submits again after a timeout gets the task
or workflow its key made, never a second one; the same key with another request is a
conflict naming the key; keys are per tenant and expire."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.services.tasks import idempotency
from tests.client import GraphQLClient


def parked(queue: str, **more: Any) -> dict[str, Any]:
    """A task on a queue no worker consumes: it stays QUEUED, so nothing but the submission
    changes it."""
    return {"taskType": "echo", "queue": queue, **more}


async def submit(client: GraphQLClient, item: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = (await client.data("SubmitTask", input=item))["submitTask"]
    return payload


async def rows(engine: Any, sql: str, **params: Any) -> list[Any]:
    async with engine.begin() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def test_the_same_key_answers_the_same_task_and_another_request_conflicts(
    admin: GraphQLClient, client_for: Callable[..., GraphQLClient], engine: Any
) -> None:
    queue = f"idem-{uuid.uuid4().hex[:8]}"
    first = await submit(admin, parked(queue, input={"n": 1}, idempotencyKey="order-17"))
    assert first["errors"] == [] and first["replayed"] is False
    again = await submit(admin, parked(queue, input={"n": 1}, idempotencyKey="order-17"))
    assert again["errors"] == [] and again["replayed"] is True
    assert again["task"]["id"] == first["task"]["id"]
    # another request under the same key: a conflict naming the key, nothing written
    other = await submit(admin, parked(queue, input={"n": 2}, idempotencyKey="order-17"))
    assert other["task"] is None and other["replayed"] is False
    [error] = other["errors"]
    assert (error["field"], error["code"]) == ("idempotencyKey", "CONFLICT")
    assert "order-17" in error["message"]
    # a key is the tenant's own: another tenant's same key makes its own task
    tenant = client_for("tenant_admin", "acme")
    theirs = await submit(tenant, parked(queue, input={"n": 1}, idempotencyKey="order-17"))
    assert theirs["replayed"] is False and theirs["task"]["id"] != first["task"]["id"]
    tasks = await rows(engine, "SELECT id FROM tasks WHERE queue = :q", q=queue)
    assert len(tasks) == 2
    # kept OPSGRAPH_IDEMPOTENCY_TTL (24 h by default) from the first submission
    [(created, expires)] = await rows(
        engine,
        "SELECT created_at, expires_at FROM idempotency_keys WHERE key = 'order-17' AND scope = ''",
    )
    assert expires - created == timedelta(hours=24)
    # once it expired, the key makes a new task
    await rows(engine, "UPDATE idempotency_keys SET expires_at = now() RETURNING key")
    later = await submit(admin, parked(queue, input={"n": 2}, idempotencyKey="order-17"))
    assert later["errors"] == [] and later["replayed"] is False
    assert later["task"]["id"] not in (first["task"]["id"], theirs["task"]["id"])
    # a key longer than 255 characters is refused naming it
    long = await submit(admin, parked(queue, idempotencyKey="k" * 256))
    assert [(e["field"], e["code"]) for e in long["errors"]] == [("idempotencyKey", "INVALID")]


async def test_fifty_concurrent_identical_submits_leave_one_task(
    admin: GraphQLClient, engine: Any
) -> None:
    queue = f"idem-{uuid.uuid4().hex[:8]}"
    item = parked(queue, input={"prompt": "once"}, idempotencyKey="retry-storm")
    answers = await asyncio.gather(*(submit(admin, item) for _ in range(50)))
    assert all(a["errors"] == [] for a in answers)
    assert len({a["task"]["id"] for a in answers}) == 1
    assert sum(not a["replayed"] for a in answers) == 1
    tasks = await rows(engine, "SELECT id FROM tasks WHERE queue = :q", q=queue)
    assert [str(t.id) for t in tasks] == [answers[0]["task"]["id"]]


async def test_batch_items_and_workflows_take_keys(admin: GraphQLClient, engine: Any) -> None:
    queue = f"idem-{uuid.uuid4().hex[:8]}"
    items = [
        parked(queue, input={"n": 1}, idempotencyKey="a"),
        parked(queue, input={"n": 2}),
        parked(queue, input={"n": 1}, idempotencyKey="a"),  # the same item twice: one task
    ]
    first = (await admin.data("SubmitTasks", input=items))["submitTasks"]
    assert first["errors"] == [] and first["submitted"] == 2
    ids = [t["id"] for t in first["tasks"]]
    assert ids[0] == ids[2] != ids[1] and first["replayed"] == [ids[2]]
    again = (await admin.data("SubmitTasks", input=[items[0]]))["submitTasks"]
    assert again["submitted"] == 0 and again["replayed"] == [ids[0]]
    # a conflicting item refuses the batch (nothing stored) naming its index and the key
    clash = [parked(queue, input={"n": 3}), parked(queue, input={"n": 9}, idempotencyKey="a")]
    refused = (await admin.data("SubmitTasks", input=clash))["submitTasks"]
    assert [(e["index"], e["field"], e["code"]) for e in refused["errors"]] == [
        (1, "idempotencyKey", "CONFLICT")
    ]
    assert len(await rows(engine, "SELECT id FROM tasks WHERE queue = :q", q=queue)) == 2

    workflow = {
        "name": "nightly",
        "idempotencyKey": "wf-1",
        "steps": [{"stepId": "a", "taskType": "echo", "queue": queue}],
    }
    made = (await admin.data("CreateWorkflow", input=workflow))["createWorkflow"]
    assert made["errors"] == [] and made["replayed"] is False
    replay = (await admin.data("CreateWorkflow", input=workflow))["createWorkflow"]
    assert replay["replayed"] is True and replay["workflow"]["id"] == made["workflow"]["id"]
    changed = (await admin.data("CreateWorkflow", input={**workflow, "name": "other"}))[
        "createWorkflow"
    ]
    assert [(e["field"], e["code"]) for e in changed["errors"]] == [("idempotencyKey", "CONFLICT")]
    # a key names one kind of object: a task's key is no workflow's
    crossed = (await admin.data("CreateWorkflow", input={**workflow, "idempotencyKey": "a"}))[
        "createWorkflow"
    ]
    assert [e["code"] for e in crossed["errors"]] == ["CONFLICT"]
    workflows = await rows(engine, "SELECT id FROM workflows WHERE name = 'nightly'")
    assert len(workflows) == 1


async def test_rest_creation_takes_the_idempotency_key_header(
    http: httpx.AsyncClient, engine: Any
) -> None:
    queue = f"idem-{uuid.uuid4().hex[:8]}"
    body = {"tasks": [{"task_type": "echo", "queue": queue, "input": {"n": n}} for n in (1, 2)]}
    headers = {"Idempotency-Key": "batch-7"}
    first = await http.post("/api/v1/tasks/batch", json=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["submitted"] == 2 and first.json()["replayed"] == []
    again = await http.post("/api/v1/tasks/batch", json=body, headers=headers)
    assert again.status_code == 202
    assert again.json()["task_ids"] == first.json()["task_ids"]
    assert again.json()["replayed"] == first.json()["task_ids"]
    assert again.json()["submitted"] == 0
    body["tasks"][1]["input"] = {"n": 3}
    clash = await http.post("/api/v1/tasks/batch", json=body, headers=headers)
    assert clash.status_code == 409
    [problem] = clash.json()["detail"]
    assert problem["loc"] == ["body", "tasks", 1, "idempotency_key"]
    assert len(await rows(engine, "SELECT id FROM tasks WHERE queue = :q", q=queue)) == 2

    workflow = {"name": "rest-once", "steps": [{"step_id": "a", "task_type": "echo"}]}
    made = await http.post("/api/v1/workflows", json=workflow, headers={"Idempotency-Key": "w"})
    assert made.status_code == 201 and "Idempotent-Replayed" not in made.headers
    replay = await http.post("/api/v1/workflows", json=workflow, headers={"Idempotency-Key": "w"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == made.json()["id"]
    workflow["name"] = "another"
    conflict = await http.post("/api/v1/workflows", json=workflow, headers={"Idempotency-Key": "w"})
    assert conflict.status_code == 409
    assert conflict.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    too_long = await http.post(
        "/api/v1/workflows", json=workflow, headers={"Idempotency-Key": "w" * 256}
    )
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_expired_keys_are_purged_and_live_ones_kept(engine: Any) -> None:
    """What the workers' housekeeping loop runs every minute."""
    await rows(
        engine,
        "INSERT INTO idempotency_keys VALUES "
        "('', 'old-1', 'task', 'f', gen_random_uuid(), now() - interval '2 days', "
        "now() - interval '1 day'), "
        "('acme', 'old-2', 'task', 'f', gen_random_uuid(), now() - interval '2 days', "
        "now() - interval '1 second'), "
        "('acme', 'live', 'task', 'f', gen_random_uuid(), now(), now() + interval '1 day') "
        "RETURNING key",
    )
    async with async_sessionmaker(engine)() as session, session.begin():
        purged = await idempotency.purge_expired(session, now=datetime.now(UTC))
    assert purged == 2
    kept = await rows(engine, "SELECT scope, key FROM idempotency_keys ORDER BY key")
    assert [tuple(r) for r in kept] == [("acme", "live")]
