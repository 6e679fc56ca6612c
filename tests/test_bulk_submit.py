"""Bulk submission: up to 1,000 tasks per call over GraphQL and REST, validated item by item,
all or nothing unless `partial`, each with its `submitted` transition, all run by a worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from tests.client import GraphQLClient
from tests.waiting import wait_for


async def counts(engine: Any) -> tuple[int, int]:
    async with engine.connect() as conn:
        tasks_n = (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar_one()
        submitted = (
            await conn.execute(
                text("SELECT count(*) FROM task_transitions WHERE reason = 'submitted'")
            )
        ).scalar_one()
    return int(tasks_n), int(submitted)


def echo(i: int, **extra: Any) -> dict[str, Any]:
    return {"taskType": "echo", "queue": "default", "config": {"value": i}, **extra}


async def test_graphql_batches_are_all_or_nothing_unless_partial(
    admin: GraphQLClient, worker: Any, engine: Any
) -> None:
    items = [echo(i) for i in range(250)]
    done = (await admin.data("SubmitTasks", input=items))["submitTasks"]
    assert done["submitted"] == 250 and not done["errors"]
    assert len({t["id"] for t in done["tasks"]}) == 250
    assert await counts(engine) == (250, 250)

    async def all_completed() -> bool:
        async with engine.connect() as conn:
            n = (
                await conn.execute(text("SELECT count(*) FROM tasks WHERE status = 'COMPLETED'"))
            ).scalar_one()
        return int(n) == 250

    await wait_for(all_completed, what="the batch run by the worker", timeout=60)

    bad = [echo(i) for i in range(10)]
    bad[3] = echo(3, operation="nope", taskType=None)
    bad[7] = echo(7, input=["not", "an", "object"])
    refused = (await admin.data("SubmitTasks", input=bad))["submitTasks"]
    assert refused["submitted"] == 0 and refused["tasks"] == []
    assert [(e["index"], e["field"]) for e in refused["errors"]] == [(3, "operation"), (7, "input")]
    assert await counts(engine) == (250, 250)  # nothing stored

    partial = (await admin.data("SubmitTasks", input=bad, partial=True))["submitTasks"]
    assert partial["submitted"] == 8 and [e["index"] for e in partial["errors"]] == [3, 7]
    assert await counts(engine) == (258, 258)


async def test_rest_batches(
    client_for: Callable[..., GraphQLClient],
    engine: Any,
) -> None:
    rest = client_for().http
    body = {"tasks": [{"task_type": "echo", "queue": "default"} for _ in range(100)]}
    ok = await rest.post("/api/v1/tasks/batch", json=body)
    assert ok.status_code == 202, ok.text
    assert ok.json()["submitted"] == 100 and len(set(ok.json()["task_ids"])) == 100
    assert await counts(engine) == (100, 100)

    mixed = {"tasks": [{"task_type": "echo"}, {"task_type": "teleport"}, {"operation": "echo"}]}
    refused = await rest.post("/api/v1/tasks/batch", json=mixed)
    assert refused.status_code == 422
    assert [d["loc"][:3] for d in refused.json()["detail"]] == [["body", "tasks", 1]]
    assert await counts(engine) == (100, 100)
    kept = await rest.post("/api/v1/tasks/batch", json={**mixed, "partial": True})
    assert kept.status_code == 202 and kept.json()["submitted"] == 2
    assert kept.json()["errors"][0]["loc"][:3] == ["body", "tasks", 1]

    too_many = {"tasks": [{"task_type": "echo"}] * 1001}
    assert (await rest.post("/api/v1/tasks/batch", json=too_many)).status_code == 422
    assert (await rest.post("/api/v1/tasks/batch", json={"tasks": []})).status_code == 422
    viewer = client_for("viewer").http
    assert (await viewer.post("/api/v1/tasks/batch", json=body)).status_code == 403
    # a tenant's tasks are its own
    alice = client_for("tenant_admin", "alice").http
    mine = await alice.post("/api/v1/tasks/batch", json={"tasks": [{"task_type": "echo"}]})
    async with engine.connect() as conn:
        tenant = (
            await conn.execute(
                text("SELECT origin_tenant_id FROM tasks WHERE id = :id"),
                {"id": mine.json()["task_ids"][0]},
            )
        ).scalar_one()
    assert tenant == "alice"
