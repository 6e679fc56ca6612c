"""The scope rule in one place: a credential naming a tenant is a tenant credential whatever its
role (at issue, at use, on both doors); every route and root field declares its access or the
app is not built; two credentials in one request are judged by the bearer token alone; a live log
tail reads only its tenant's rows even when one ingest mixes tenants."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pytest
import strawberry
from fastapi import APIRouter, Depends
from sqlalchemy import text

from app.auth.principals import (
    ADMIN,
    OPERATE,
    PLATFORM_OPERATE,
    PLATFORM_READ,
    READ,
    ROLES,
    Permission,
    Principal,
)
from app.config import Settings
from app.gql.permissions import CanRead, UndeclaredAccess, check_declared
from app.rest import access
from app.rest.deps import Reader, require
from tests.client import GraphQLClient, live, operations, rest_client
from tests.conftest import make_token, wait_for_status

TENANT_A, TENANT_B = "scope-a", "scope-b"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


async def test_an_admin_role_naming_a_tenant_acts_within_that_tenant_only(
    server: str, settings: Settings, engine: Any, env: dict[str, str], worker: Any
) -> None:
    # given tenant B's finished task, and credentials of an admin role naming tenant A
    async with GraphQLClient(server, make_token(settings, "tenant_admin", TENANT_B)) as b:
        made = await b.data("SubmitTask", input={"taskType": "echo", "input": {"n": 1}})
        b_task = made["submitTask"]["task"]["id"]
        await wait_for_status(b, b_task, {"COMPLETED"})
    issued = _cli(env, "token", "--role", "platform_admin", "--tenant", TENANT_A)
    assert issued.returncode == 0, issued.stderr
    # the CLI says what such a credential is, on stderr (stdout is the token alone)
    assert "acts within that tenant only" in issued.stderr
    token = issued.stdout.strip()
    created = _cli(env, "apikey", "create", "--role", "super_admin", "--tenant", TENANT_A)
    assert created.returncode == 0, created.stderr
    assert "acts within that tenant only" in created.stderr
    key = created.stdout.strip()

    for credential in (GraphQLClient(server, token), GraphQLClient(server, None, api_key=key)):
        async with credential as client:
            # when it tries the installation-wide admin actions on both doors
            for method, path in (
                ("DELETE", "/api/v1/llm/stats?older_than_hours=0"),
                ("DELETE", "/api/v1/llm/semaphore"),
                ("DELETE", "/api/dlq/llm"),
                ("GET", "/metrics"),
            ):
                r = await client.http.request(method, path)
                assert r.status_code == 403, (client.http.headers, path, r.text)
            for mutation in ("clearLlmStats(input: {olderThanHours: 0})", "clearLlmSemaphore"):
                body = await client.query(f"mutation {{ {mutation} {{ __typename }} }}")
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
            # then it is told what it may do: operate within its tenant, nothing more
            told = await client.query("{ viewer { tenantId canOperate canAdmin canReadPlatform } }")
            assert told["data"]["viewer"] == {
                "tenantId": TENANT_A,
                "canOperate": True,
                "canAdmin": False,
                "canReadPlatform": False,
            }
    # and B's task is still there
    async with engine.connect() as conn:
        found = await conn.scalar(text("SELECT count(*) FROM tasks WHERE id = :id"), {"id": b_task})
    assert found == 1


def test_a_tenant_principal_holds_at_most_read_and_operate_whatever_its_role() -> None:
    """What every service asks (`principal.can(...)`, the `is_admin` flags it hands down)
    answers the same rule the doors apply."""
    for role in ROLES:
        scoped = Principal(subject="s", role=role, tenant_id="t")
        assert scoped.permissions <= {Permission.READ, Permission.OPERATE}, role
        assert not scoped.can(Permission.ADMIN), role
        for installation in (ADMIN, PLATFORM_READ, PLATFORM_OPERATE):
            assert not scoped.allows(installation), (role, installation)
        assert scoped.allows(READ), role
    admin = Principal(subject="s", role="platform_admin")
    assert admin.can(Permission.ADMIN) and admin.allows(ADMIN) and admin.allows(PLATFORM_READ)
    assert not Principal(subject="s", role="viewer").allows(OPERATE)


def test_credentials_that_would_be_refused_at_use_are_refused_at_issue(
    env: dict[str, str],
) -> None:
    for args in (
        ("token", "--role", "tenant_admin"),
        ("apikey", "create", "--role", "tenant_admin"),
    ):
        out = _cli(env, *args)
        assert out.returncode != 0 and "must name its tenant" in out.stderr, (args, out)
        assert out.stdout == "", args
    # an unscoped admin credential gets no note
    out = _cli(env, "token", "--role", "platform_admin")
    assert out.returncode == 0 and out.stderr == ""


def refusal(build: Callable[[], object]) -> BaseException:
    """What building raised: the test then asserts it is the refusal it expects (any other
    error, or none, fails the assertion rather than erring)."""
    try:
        build()
    except Exception as exc:
        return exc
    raise AssertionError("it was built")


def test_a_route_without_an_access_declaration_is_not_built() -> None:
    router = APIRouter()

    @router.get("/declared")
    async def declared(principal: Reader) -> None: ...

    access.declared(router)  # fine so far

    @router.get("/forgotten")
    async def forgotten() -> None: ...

    refused = refusal(lambda: access.declared(router))
    assert isinstance(refused, access.UndeclaredAccess), repr(refused)
    assert "/forgotten declares 0" in str(refused)

    twice = APIRouter()

    @twice.get("/twice")
    async def both(
        principal: Reader, again: Annotated[Principal, Depends(require(ADMIN))]
    ) -> None: ...

    with pytest.raises(access.UndeclaredAccess, match="declares 2"):
        access.declared(twice)


def test_a_root_field_without_an_access_declaration_is_not_built() -> None:
    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[CanRead])
        def fine(self) -> int:
            return 1

        @strawberry.field
        def forgotten(self) -> int:
            return 2

    refused = refusal(lambda: check_declared(strawberry.Schema(query=Query)))
    assert isinstance(refused, UndeclaredAccess), repr(refused)
    assert "'forgotten' declares 0" in str(refused)


async def test_the_openapi_document_says_who_may_call_each_operation(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        doc = (await http.get("/openapi.json")).json()
    refused = doc["components"]["schemas"]["RefusedProblem"]
    assert set(refused["required"]) == {"detail", "code"}
    for path, operations_ in doc["paths"].items():
        for method, op in operations_.items():
            declared = op["x-opsgraph-access"]
            assert declared["permission"] in ("read", "operate", "admin"), (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            ref = op["responses"]["403"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/RefusedProblem"), (method, path)
            if declared["scope"] == "installation":
                assert "Installation-wide" in op.get("description", ""), (method, path)
    pipeline = doc["paths"]["/api/batches"]["get"]["x-opsgraph-access"]
    assert pipeline == {"permission": "read", "scope": "installation"}
    clear = doc["paths"]["/api/v1/llm/stats"]["delete"]["x-opsgraph-access"]
    assert clear == {"permission": "admin", "scope": "installation"}


async def test_two_credentials_are_judged_by_the_bearer_token(
    server: str, settings: Settings, env: dict[str, str]
) -> None:
    key = _cli(env, "apikey", "create", "--role", "platform_admin").stdout.strip()
    viewer = make_token(settings, "viewer")
    # a valid token beside a key that is not one: the token's principal
    async with rest_client(server, viewer, api_key="og_not_a_key") as http:
        r = await http.get("/api/v1/monitoring/tasks")
        assert r.status_code == 200, r.text
    # ... and its role, not the key's: a valid admin key lends the viewer nothing
    async with GraphQLClient(server, viewer, api_key=key) as both:
        r = await both.http.delete("/api/v1/llm/semaphore")
        assert r.status_code == 403, r.text
        body = await both.query("{ viewer { role } }")
        assert body["data"]["viewer"]["role"] == "viewer"
    # a bad token is a 401 even beside a valid key
    async with rest_client(server, "not-a-token", api_key=key) as http:
        r = await http.get("/api/v1/monitoring/tasks")
        assert r.status_code == 401, r.text


def _line(message: str, agent: str) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "INFO",
        "message": message,
        "agentId": agent,
    }


async def test_a_log_tail_reads_only_its_tenants_lines_of_a_mixed_ingest(
    server: str, settings: Settings, admin: GraphQLClient
) -> None:
    """One unscoped ingest carries lines of A's and B's agents (each line takes its agent's
    tenant): the event names both tenants, so only the rows' own tenant keeps B's line from
    A's tail."""
    async with (
        GraphQLClient(server, make_token(settings, "tenant_admin", TENANT_A)) as a,
        GraphQLClient(server, make_token(settings, "tenant_admin", TENANT_B)) as b,
    ):
        for client, agent in ((a, "tail-of-a"), (b, "tail-of-b")):
            beat = await client.data(
                "ReportHeartbeat", agentId=agent, input={"name": agent, "type": "llm"}
            )
            assert beat["reportHeartbeat"]["errors"] == [], beat
        async with live(a, "LogTail", reader=admin) as tail:
            # B's line first in every ingest: a leak would arrive before A's own line
            got = []
            for n in (1, 2):
                entries = [_line(f"b-secret-{n}", "tail-of-b"), _line(f"a-line-{n}", "tail-of-a")]
                ingested = await admin.data("IngestLogs", entries=entries)
                assert ingested["ingestLogs"]["errors"] == [], ingested
                got.append((await tail.next(timeout=10))["logTail"])
    assert [(g["agentId"], g["message"]) for g in got] == [
        ("tail-of-a", "a-line-1"),
        ("tail-of-a", "a-line-2"),
    ]


def test_operations_used_here_exist() -> None:
    assert {"LogTail", "IngestLogs", "ReportHeartbeat", "SubmitTask", "Task"} <= set(operations())


async def test_a_client_task_naming_a_pipeline_queue_is_refused(
    server: str, settings: Settings, engine: Any
) -> None:
    """The pipeline's queues run opsgraph's own stages on the workers that read the cameras'
    files: a client (here a tenant at priority 100) never gets a task onto one."""
    token = make_token(settings, "tenant_admin", TENANT_A)
    a = GraphQLClient(server, token)
    async with engine.connect() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM tasks"))
    try:
        for queue in settings.pipeline_queues:
            item = {"taskType": "echo", "queue": queue, "priority": 100, "input": {}}
            one = (await a.data("SubmitTask", input=item))["submitTask"]
            assert one["task"] is None, one
            assert [(e["field"], e["code"]) for e in one["errors"]] == [("queue", "RESERVED_QUEUE")]
            assert queue in one["errors"][0]["message"]
            many = (await a.data("SubmitTasks", input=[item], partial=True))["submitTasks"]
            assert many["submitted"] == 0, many
            assert [(e["field"], e["code"]) for e in many["errors"]] == [
                ("queue", "RESERVED_QUEUE")
            ]
        async with rest_client(server, token) as http:
            r = await http.post(
                "/api/v1/tasks/batch",
                json={"tasks": [{"task_type": "echo", "queue": "detection_queue"}]},
            )
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", "tasks", 0, "queue"], r.text
            r = await http.post(
                "/api/v1/workflows",
                json={
                    "name": "sneaky",
                    "steps": [{"step_id": "a", "task_type": "echo", "queue": "analysis_queue"}],
                },
            )
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"][-3:] == ["steps", 0, "queue"], r.text
    finally:
        await a.aclose()
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM tasks")) == before
        assert await conn.scalar(text("SELECT count(*) FROM workflows WHERE name = 'sneaky'")) == 0


async def test_a_workflow_step_naming_a_pipeline_queue_is_refused_in_graphql(
    server: str, settings: Settings
) -> None:
    a = GraphQLClient(server, make_token(settings, "platform_admin"))
    try:
        body = await a.raw(
            'mutation { createWorkflow(input: {name: "w", steps: [{stepId: "a",'
            ' taskType: "echo", queue: "enrichment_queue"}]}) { workflow { id }'
            " errors { field code } } }"
        )
        payload = body.json()["data"]["createWorkflow"]
        assert payload == {
            "workflow": None,
            "errors": [{"field": "steps[0].queue", "code": "RESERVED_QUEUE"}],
        }
    finally:
        await a.aclose()
