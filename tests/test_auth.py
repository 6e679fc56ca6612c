"""The auth matrix: 401 without or with bad credentials, 403 for the wrong role, 404 across
tenants, tenant-scoped lists and subscriptions, API keys, and the websocket handshake."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
import websockets

from app.config import Settings
from tests.client import GraphQLClient, operations, rest_client
from tests.conftest import JWT_SECRET

READ_PATHS = [
    "/api/v1/monitoring/tasks",
    "/api/v1/monitoring/stats",
    "/api/v1/monitoring/queues",
    "/api/v1/monitoring/workers",
    "/api/v1/monitoring/workers/health",
    "/api/v1/metrics",
    f"/api/v1/monitoring/tasks/{uuid.uuid4()}",
    f"/api/v1/monitoring/tasks/{uuid.uuid4()}/media",
]


def bad_tokens(settings: Settings) -> dict[str, str]:
    now = 1_700_000_000
    good = {
        "sub": "x",
        "role": "platform_admin",
        "iss": "opsgraph",
        "iat": now,
        "exp": now + 10**10,
    }
    return {
        "garbage": "not-a-jwt",
        "wrong-secret": jwt.encode(good, "another-secret-another-secret-another", "HS256"),
        "expired": jwt.encode({**good, "exp": now}, JWT_SECRET, "HS256"),
        "unknown-role": jwt.encode({**good, "role": "root"}, JWT_SECRET, "HS256"),
        "wrong-issuer": jwt.encode({**good, "iss": "elsewhere"}, JWT_SECRET, "HS256"),
        "tenant-admin-without-tenant": jwt.encode(
            {**good, "role": "tenant_admin"}, JWT_SECRET, "HS256"
        ),
        "alg-none": jwt.encode(good, None, "none"),
    }


async def test_no_or_bad_credentials_get_401(server: str, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        for path in READ_PATHS:
            assert (await http.get(path)).status_code == 401, path
        assert (await http.post("/api/v1/tasks", json={"prompt": "x"})).status_code == 401
        response = await http.post("/graphql", json={"query": "{ queueStats { totalPending } }"})
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        for name, token in bad_tokens(settings).items():
            headers = {"Authorization": f"Bearer {token}"}
            assert (await http.get(READ_PATHS[0], headers=headers)).status_code == 401, name
            gql = await http.post("/graphql", headers=headers, json={"query": "{ __typename }"})
            assert gql.status_code == 401, name
        basic = {"Authorization": "Basic dXNlcjpwYXNz"}
        assert (await http.get(READ_PATHS[0], headers=basic)).status_code == 401
        assert (await http.get(READ_PATHS[0], headers={"X-API-Key": "og_nope"})).status_code == 401
        # health endpoints stay open
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).json()["status"] == "ready"


@pytest.mark.parametrize(
    "role", ["viewer", "ai_admin", "tenant_admin", "platform_admin", "super_admin", "system_admin"]
)
async def test_every_role_reads(server: str, token_for: Callable[..., str], role: str) -> None:
    tenant = "t1" if role == "tenant_admin" else None
    async with rest_client(server, token_for(role, tenant)) as http:
        for path in READ_PATHS[:6]:
            # opsgraph's own workers are installation-wide: a tenant gets 403
            expected = 403 if tenant and "/workers" in path else 200
            assert (await http.get(path)).status_code == expected, (role, path)


async def test_viewer_cannot_operate(
    client_for: Callable[..., GraphQLClient], admin: GraphQLClient
) -> None:
    viewer = client_for("viewer")
    body = await viewer.execute("SubmitTask", input={"taskType": "echo", "queue": "parked"})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None
    assert (await viewer.http.post("/api/v1/tasks", json={"prompt": "x"})).status_code == 403
    # nothing was written
    total = (await admin.data("Tasks"))["tasks"]["totalCount"]
    assert total == 0
    # an operator may
    operator = client_for("ai_admin")
    ok = await operator.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
    assert ok["submitTask"]["errors"] == []


async def test_tenants_are_isolated(client_for: Callable[..., GraphQLClient]) -> None:
    alice = client_for("tenant_admin", "alice")
    bob = client_for("tenant_admin", "bob")
    platform = client_for("platform_admin")
    # a tenant's submission is stamped with its own tenant, whatever it claims
    a = (
        await alice.data(
            "SubmitTask", input={"taskType": "echo", "queue": "parked", "originTenantId": "bob"}
        )
    )["submitTask"]["task"]
    assert a["origin"]["tenantId"] == "alice"
    p = await platform.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
    p_id = p["submitTask"]["task"]["id"]

    assert (await bob.data("Task", id=a["id"]))["task"] is None
    assert (await bob.data("Tasks"))["tasks"]["totalCount"] == 0
    assert (await alice.data("Tasks"))["tasks"]["totalCount"] == 1
    # platform-level tasks are hidden from tenants
    assert (await alice.data("Task", id=p_id))["task"] is None
    assert (await platform.data("Tasks"))["tasks"]["totalCount"] == 2

    cancel = (await bob.data("CancelTask", id=a["id"]))["cancelTask"]
    assert cancel["errors"][0]["code"] == "NOT_FOUND"

    response = await bob.http.get(f"/api/v1/monitoring/tasks/{a['id']}")
    assert response.status_code == 404
    assert (await bob.http.get("/api/v1/monitoring/tasks")).json()["total"] == 0
    assert (await alice.http.get("/api/v1/monitoring/tasks")).json()["total"] == 1
    assert (await bob.http.get("/api/v1/monitoring/stats")).json()["total_tasks"] == 0
    assert (await alice.http.get(f"/api/v1/monitoring/tasks/{a['id']}/media")).status_code == 200


async def test_tenant_subscription_sees_only_its_tenant(
    client_for: Callable[..., GraphQLClient],
) -> None:
    alice = client_for("tenant_admin", "alice")
    bob = client_for("tenant_admin", "bob")
    async with bob.subscribe("TaskUpdated", queue="parked") as sub:
        await alice.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
        mine = await bob.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
        event = (await sub.next())["taskUpdated"]
        # the first event bob sees is his own, not alice's earlier one
        assert event["id"] == mine["submitTask"]["task"]["id"]
        assert event["origin"]["tenantId"] == "bob"
    # subscribing to another tenant's task by id is refused
    other = await alice.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
    async with bob.subscribe("TaskUpdated", id=other["submitTask"]["task"]["id"]) as sub:
        message = await sub.message()
        assert message["type"] in ("error", "next")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_websocket_requires_auth_at_connection_init(
    server: str, token_for: Callable[..., str]
) -> None:
    url = server.replace("http", "ws", 1) + "/graphql"
    for payload in ({}, {"Authorization": "Bearer nope"}):
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # nothing is accepted before connection_init
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": operations()["QueueStatsLive"]},
                }
            )
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # a token on the upgrade request's header is accepted too
    headers = {"Authorization": f"Bearer {token_for('viewer')}"}
    async with websockets.connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers=headers,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    # the legacy graphql-ws protocol is off unless enabled
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.send(json.dumps({"type": "connection_init", "payload": headers}))
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406


async def test_subscription_limit_per_connection(
    server: str, token_for: Callable[..., str]
) -> None:
    url = server.replace("http", "ws", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"Authorization": f"Bearer {token_for('viewer')}"},
                }
            )
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = operations()["TaskUpdated"]
        for i in range(101):
            await ws.send(
                json.dumps(
                    {
                        "id": str(i),
                        "type": "subscribe",
                        "payload": {"query": query, "variables": {}},
                    }
                )
            )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["id"] == "100" and message["type"] == "error"
        assert "limit" in message["payload"][0]["message"].lower()


async def test_api_keys_from_the_cli(server: str, env: dict[str, str]) -> None:
    def create(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "app.cli", "apikey", "create", *args],
            env={**__import__("os").environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    viewer_key = create("--role", "viewer", "--name", "dash")
    tenant_key = create("--role", "tenant_admin", "--tenant", "alice")
    assert viewer_key.startswith("og_") and viewer_key != tenant_key
    async with rest_client(server, api_key=viewer_key) as viewer:
        assert (await viewer.get("/api/v1/monitoring/tasks")).status_code == 200
        denied = await viewer.post("/api/v1/tasks", json={"prompt": "x"})
        assert denied.status_code == 403
    async with GraphQLClient(server, None, api_key=tenant_key) as tenant:
        made = await tenant.data("SubmitTask", input={"taskType": "echo", "queue": "parked"})
        assert made["submitTask"]["task"]["origin"]["tenantId"] == "alice"


def test_token_cli_prints_a_verifiable_token(env: dict[str, str]) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "token",
            "--role",
            "viewer",
            "--tenant",
            "t9",
            "--ttl",
            "60",
        ],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    claims: dict[str, Any] = jwt.decode(
        out.stdout.strip(), JWT_SECRET, algorithms=["HS256"], issuer="opsgraph"
    )
    assert claims["role"] == "viewer" and claims["tenant_id"] == "t9"
    assert claims["exp"] - claims["iat"] == 60


async def test_legacy_graphql_ws_when_enabled(
    env: dict[str, str], logs: Any, token_for: Callable[..., str], worker: Any
) -> None:
    from tests.processes import start_server

    proc, base = start_server({**env, "OPSGRAPH_LEGACY_GRAPHQL_WS": "1"}, logs)
    try:
        url = base.replace("http", "ws", 1) + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "connection_error"
        async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {token_for('viewer')}"},
                    }
                )
            )
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "start",
                        "payload": {"query": operations()["QueueStatsLive"]},
                    }
                )
            )
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] == "ka":
                    continue
                break
            assert message["type"] == "data" and "queueStats" in message["payload"]["data"]
    finally:
        proc.stop()
