"""A per-tenant cap on queued tasks (issue 33, OPSGRAPH_MAX_QUEUED_PER_TENANT): a tenant's
submissions beyond it are refused with a clear error, exactly, also when they race; other
tenants and the installation's own work are not held by it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.client import GraphQLClient
from tests.conftest import make_token
from tests.processes import start_server

CAP = 5


@pytest.fixture
def capped_server(env: dict[str, str], logs: Path) -> Iterator[str]:
    proc, base = start_server({**env, "OPSGRAPH_MAX_QUEUED_PER_TENANT": str(CAP)}, logs)
    yield base
    proc.kill()


def parked(queue: str) -> dict[str, Any]:
    return {"taskType": "echo", "queue": queue}  # no worker consumes it: they stay QUEUED


async def test_a_tenant_is_refused_past_its_cap_and_no_race_passes_it(
    capped_server: str, settings: Settings
) -> None:
    queue = f"cap-{uuid.uuid4().hex[:8]}"
    acme = GraphQLClient(capped_server, make_token(settings, "tenant_admin", "acme"))
    globex = GraphQLClient(capped_server, make_token(settings, "tenant_admin", "globex"))
    admin = GraphQLClient(capped_server, make_token(settings))
    try:
        # twenty submissions at once: exactly the cap's five are stored
        answers = await asyncio.gather(
            *(acme.data("SubmitTask", input=parked(queue)) for _ in range(20))
        )
        payloads = [a["submitTask"] for a in answers]
        stored = [p for p in payloads if p["task"] is not None]
        refused = [p for p in payloads if p["task"] is None]
        assert len(stored) == CAP and len(refused) == 20 - CAP
        error = refused[0]["errors"][0]
        assert (error["field"], error["code"]) == ("tenant", "TOO_MANY_QUEUED")
        assert "OPSGRAPH_MAX_QUEUED_PER_TENANT" in error["message"]
        # a batch is refused whole, at the batch's index
        batch = (await acme.data("SubmitTasks", input=[parked(queue)] * 2))["submitTasks"]
        assert [(e["index"], e["code"]) for e in batch["errors"]] == [(-1, "TOO_MANY_QUEUED")]
        # REST answers 429 naming the cap
        rest = await acme.http.post(
            "/api/v1/tasks/batch", json={"tasks": [{"task_type": "echo", "queue": queue}]}
        )
        assert rest.status_code == 429
        assert rest.json()["detail"][0]["type"] == "too_many_queued"
        # another tenant, and the installation's own credentials, are not held by acme's cap
        other = (await globex.data("SubmitTask", input=parked(queue)))["submitTask"]
        assert other["errors"] == []
        unscoped = (await admin.data("SubmitTasks", input=[parked(queue)] * (CAP + 1)))[
            "submitTasks"
        ]
        assert unscoped["errors"] == [] and unscoped["submitted"] == CAP + 1
        # once one of acme's tasks leaves the queue (cancelled), one more fits
        cancelled = await acme.data("CancelTask", id=stored[0]["task"]["id"])
        assert cancelled["cancelTask"]["errors"] == []
        again = (await acme.data("SubmitTask", input=parked(queue)))["submitTask"]
        assert again["errors"] == []
        full = (await acme.data("SubmitTask", input=parked(queue)))["submitTask"]
        assert [e["code"] for e in full["errors"]] == ["TOO_MANY_QUEUED"]
    finally:
        for client in (acme, globex, admin):
            await client.aclose()


async def test_rest_routes_refuse_past_the_cap_with_429(
    capped_server: str, settings: Settings
) -> None:
    token = make_token(settings, "tenant_admin", "initech")
    async with httpx.AsyncClient(
        base_url=capped_server, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        queue = f"cap-{uuid.uuid4().hex[:8]}"
        body = {"tasks": [{"task_type": "echo", "queue": queue}] * CAP}
        assert (await http.post("/api/v1/tasks/batch", json=body)).status_code == 202
        refused = await http.post("/api/v1/tasks/batch", json={"tasks": body["tasks"][:1]})
        assert refused.status_code == 429
        assert "initech" in refused.json()["detail"][0]["msg"]
