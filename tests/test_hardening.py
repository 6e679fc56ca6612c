"""The spine's hardening: webhook SSRF, secrets at start, /metrics for operators only,
websockets that lose their rights, cancels that always win, effects that survive a Redis
outage, one clock for the semaphore, waiting that is not running, retries that keep their place."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import text
from starlette.responses import RedirectResponse

from app.auth.api_keys import create_api_key, revoke_api_keys
from app.config import Settings
from app.platform.embedded import start_redis
from tests.client import GraphQLClient
from tests.conftest import WEBHOOK_SECRET, make_token, wait_for_status
from tests.processes import Proc, start_server, start_worker
from tests.receiver import Receiver, SlowProvider
from tests.signatures import signed_by
from tests.waiting import wait_for

SKEWED_CLOCK = Path(__file__).resolve().parent / "skewed_clock"


@pytest.fixture(scope="module")
def strict_server(env: dict[str, str], logs: Path) -> Iterator[str]:
    """An API process with the default SSRF guard (private networks refused)."""
    proc, base = start_server({**env, "OPSGRAPH_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "0"}, logs)
    yield base
    proc.stop()


async def _submit(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    data = await client.data("SubmitTask", input={"taskType": "echo", **fields})
    payload: dict[str, Any] = data["submitTask"]
    return payload


async def _deliveries(engine: Any, object_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, attempts, last_error, last_status_code FROM webhook_deliveries "
                "WHERE object_id = :id ORDER BY created_at"
            ),
            {"id": object_id},
        )
        return [dict(r._mapping) for r in rows]


async def _wait_delivery(
    engine: Any, object_id: str, statuses: set[str], timeout: float = 20
) -> dict[str, Any]:
    rows = await wait_for(
        lambda: _deliveries(engine, object_id),
        until=lambda rows: rows and rows[-1]["status"] in statuses,
        timeout=timeout,
        what=f"the delivery for {object_id} to reach {statuses}",
    )
    return rows[-1]


# --- SSRF ---------------------------------------------------------------------------------

FORBIDDEN_URLS = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://127.0.0.1:6379/",  # loopback (Redis)
    "http://10.0.0.8/hook",  # private
    "http://[::1]:8080/",  # IPv6 loopback
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[fe80::1]/",  # IPv6 link-local
    "http://224.0.0.1/",  # multicast
    "http://0.0.0.0/",  # unspecified
    "http://240.0.0.1/",  # reserved (240/4)
    "http://[fc00::1]/",  # unique local (fc00::/7)
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo wrapping 127.0.0.1
    "http://2130706433/",  # 127.0.0.1 spelled as one number
    "http://0x7f.1/",  # 127.0.0.1 in hex shorthand
    "http://localhost:8000/",
    "ftp://example.com/hook",
]


async def test_forbidden_webhook_urls_are_refused_when_given(
    strict_server: str, settings: Settings
) -> None:
    client = GraphQLClient(strict_server, make_token(settings))
    try:
        for url in FORBIDDEN_URLS:
            payload = await _submit(client, queue="parked", webhookUrl=url)
            assert payload["task"] is None, url
            assert payload["errors"][0]["field"] == "webhookUrl", (url, payload)
        ok = await _submit(client, queue="parked", webhookUrl="https://hooks.example.com/x")
        assert ok["errors"] == [] and ok["task"]["webhookUrl"] == "https://hooks.example.com/x"
        # the same guard on workflows (REST shape: 422 naming the field)
        response = await client.http.post(
            "/api/v1/workflows",
            json={
                "name": "w",
                "webhook_url": "http://169.254.169.254/",
                "steps": [{"step_id": "a", "task_type": "echo"}],
            },
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][-1] == "webhook_url"
        # and on webhook subscriptions, through both doors, and REST's bulk submission
        for url in FORBIDDEN_URLS:
            response = await client.http.post(
                "/api/v1/monitoring/webhooks",
                json={"url": url, "events": ["monitoring.alert_triggered"]},
            )
            assert response.status_code == 422, (url, response.text)
            assert response.json()["detail"][0]["loc"][-1] == "url", (url, response.text)
            made = await client.data(
                "CreateWebhookSubscription", url=url, events=["monitoring.alert_triggered"]
            )
            assert made["createWebhookSubscription"]["subscription"] is None, url
            assert made["createWebhookSubscription"]["errors"][0]["field"] == "url", url
        response = await client.http.post(
            "/api/v1/tasks/batch",
            json={
                "tasks": [
                    {"task_type": "echo", "queue": "parked", "webhook_url": "http://[fc00::1]/"}
                ]
            },
        )
        assert response.status_code == 422, response.text
        assert "webhook_url" in str(response.json()["detail"][0]["loc"]), response.text
    finally:
        await client.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    admin: GraphQLClient,
    spawn_worker: Callable[..., Proc],
    receiver: Receiver,
    engine: Any,
) -> None:
    # given a name that passes the check when given (it is not an address) but resolves to
    # a private one (this machine's own name), and a worker with the default guard
    name = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(name, receiver.port)}
    if not all(a.startswith(("127.", "10.", "172.", "192.168.", "::1")) for a in resolved):
        pytest.skip(f"{name} resolves to {resolved}, not a private address")
    spawn_worker("worker-ssrf", "ssrfq", OPSGRAPH_WEBHOOK_ALLOW_PRIVATE_NETWORKS="0")
    payload = await _submit(
        admin,
        queue="ssrfq",
        webhookUrl=f"http://{name}:{receiver.port}/hook",
        config={"simulate": {"latency_ms": 1}},
    )
    task_id = payload["task"]["id"]
    await wait_for_status(admin, task_id, {"COMPLETED"})
    # then the delivery is refused after resolution, once, and the receiver never hears of it
    row = await _wait_delivery(engine, task_id, {"refused"})
    assert row["last_error"] == "refused: not a public address" and row["attempts"] == 1
    assert receiver.received == []


async def test_redirects_are_not_followed(admin: GraphQLClient, worker: Proc, engine: Any) -> None:
    internal = Receiver("/secret", methods=("GET", "POST"))
    outer = Receiver(reply=lambda _: RedirectResponse(internal.hook_url, status_code=307))
    async with internal, outer:
        payload = await _submit(
            admin,
            queue="default",
            webhookUrl=outer.hook_url,
            config={"simulate": {"latency_ms": 1}},
        )
        task_id = payload["task"]["id"]
        row = await _wait_delivery(engine, task_id, {"failed"})
        assert row["last_status_code"] == 307 and "not followed" in row["last_error"]
        assert outer.received and internal.received == []


# --- secrets, /metrics, websockets ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "overrides", "named"),
    [
        ("serve", {"OPSGRAPH_WEBHOOK_SECRET": ""}, "OPSGRAPH_WEBHOOK_SECRET"),
        ("worker", {"OPSGRAPH_WEBHOOK_SECRET": ""}, "OPSGRAPH_WEBHOOK_SECRET"),
        ("serve", {"OPSGRAPH_JWT_SECRET": ""}, "OPSGRAPH_JWT_SECRET"),
        (
            "serve",
            {"OPSGRAPH_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----"},
            "OPSGRAPH_JWT_ALGORITHM",
        ),
    ],
)
def test_serve_and_worker_refuse_to_start_without_secrets(
    env: dict[str, str], command: str, overrides: dict[str, str], named: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", command],
        env={**os.environ, **env, **overrides},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert named in result.stderr, result.stderr


async def test_metrics_is_an_operator_surface(
    server: str, token_for: Callable[..., str], settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server) as http:

        async def scrape(headers: dict[str, str]) -> int:
            return (await http.get("/metrics", headers=headers)).status_code

        def bearer(credential: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {credential}"}

        assert await scrape(bearer(token_for("tenant_admin", "acme"))) == 403
        assert await scrape(bearer(token_for("viewer"))) == 403
        assert await scrape(bearer(token_for("platform_admin", "acme"))) == 403
        assert await scrape(bearer(token_for("platform_admin"))) == 200
        assert await scrape(bearer(settings.metrics_key)) == 200
        assert await scrape(bearer("not-the-key")) == 401


async def _close_code(ws: Any, timeout: float) -> int:
    """Read until the server closes the connection; its close code."""
    try:
        while True:
            message = await asyncio.wait_for(ws.recv(), timeout)
            assert '"type":"error"' not in message.replace(" ", ""), message
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None
        return int(closed.rcvd.code)


async def _stays_open(ws: Any, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            return


async def _open_subscription(server: str, params: dict[str, str]) -> Any:
    url = server.replace("http", "ws", 1) + "/graphql"
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(_json({"type": "connection_init", "payload": params}))
    ack = await asyncio.wait_for(ws.recv(), 10)
    assert "connection_ack" in ack, ack
    query = "subscription { queueStats { totalPending } }"
    await ws.send(_json({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    return ws


def _json(value: Any) -> str:
    return json.dumps(value)


async def test_an_expired_token_closes_its_websocket(server: str, settings: Settings) -> None:
    from app.auth.tokens import issue_token

    token = issue_token(settings, role="viewer", ttl=2, subject="short-lived")
    ws = await _open_subscription(server, {"Authorization": f"Bearer {token}"})
    try:
        assert await _close_code(ws, timeout=10) == 4403
    finally:
        await ws.close()


async def test_a_revoked_api_key_closes_its_websocket(server: str, engine: Any) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    name = f"ws-{uuid.uuid4().hex[:8]}"
    async with AsyncSession(engine) as session, session.begin():
        _, key = await create_api_key(session=session, name=name, role="viewer", tenant_id=None)
    ws = await _open_subscription(server, {"X-API-Key": key})
    try:
        # still open after a few re-checks while the key is valid
        await _stays_open(ws, 2.5)
        async with AsyncSession(engine) as session, session.begin():
            assert await revoke_api_keys(session=session, name=name) == 1
        assert await _close_code(ws, timeout=10) == 4403
    finally:
        await ws.close()


# --- cancels, effects, the semaphore, retries ---------------------------------------------


async def test_a_cancel_wins_over_a_worker_death(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    # given a task running on a worker that freezes before it can acknowledge a cancel
    first = spawn_worker("worker-doomed", "raceq")
    task_id = (await _submit(admin, queue="raceq", config={"simulate": {"latency_ms": 4000}}))[
        "task"
    ]["id"]
    await wait_for_status(admin, task_id, {"RUNNING"})
    first.freeze()
    # when the cancel is requested and then the worker dies
    cancelled = (await admin.data("CancelTask", id=task_id))["cancelTask"]
    assert cancelled["task"]["status"] == "RUNNING" and cancelled["task"]["cancelRequestedAt"]
    first.kill()
    spawn_worker("worker-heir", "raceq")
    # then the reconciler ends it CANCELLED; it never runs again
    task = await wait_for_status(admin, task_id, {"CANCELLED", "COMPLETED", "QUEUED"}, timeout=30)
    if task["status"] == "QUEUED":
        task = await wait_for_status(admin, task_id, {"CANCELLED", "COMPLETED"}, timeout=30)
    assert task["status"] == "CANCELLED"
    assert [t["toStatus"] for t in task["transitions"]].count("RUNNING") == 1


async def test_effects_survive_a_redis_outage(
    env: dict[str, str], logs: Path, tmp_path: Path, settings: Settings, engine: Any
) -> None:
    redis = start_redis(tmp_path, persist=False)
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    own = {**env, "OPSGRAPH_REDIS_URL": redis.url}
    proc, base = start_server(own, logs)
    worker = start_worker(own, logs, name="worker-outage", queues="default")
    client = GraphQLClient(base, make_token(settings))

    receiver = Receiver()
    try:
        async with receiver:
            # given a task with a webhook that finishes, and one we will cancel, both running
            notified = (
                await _submit(
                    client,
                    queue="default",
                    webhookUrl=receiver.hook_url,
                    config={"simulate": {"latency_ms": 1500}},
                )
            )["task"]["id"]
            doomed = (
                await _submit(client, queue="default", config={"simulate": {"latency_ms": 60000}})
            )["task"]["id"]
            await wait_for_status(client, notified, {"RUNNING"})
            await wait_for_status(client, doomed, {"RUNNING"})
            # when Redis goes away: the first task completes and the second is cancelled
            redis.stop()
            cancel = (await client.data("CancelTask", id=doomed))["cancelTask"]
            assert cancel["errors"] == [] and cancel["task"]["cancelRequestedAt"]
            # then the webhook is delivered from PostgreSQL even while Redis is down
            delivered = await receiver.wait()
            assert len(delivered) == 1, worker.output()[-3000:]
            assert signed_by(WEBHOOK_SECRET, delivered[0].headers, delivered[0].body)
            # and once Redis is back the lost abort is sent again: the cancel takes effect
            redis = start_redis(tmp_path, persist=False, port=port)
            task = await wait_for_status(client, doomed, {"CANCELLED", "COMPLETED"}, timeout=30)
            assert task["status"] == "CANCELLED", worker.output()[-3000:]
            assert (await _deliveries(engine, notified))[0]["status"] == "delivered"
            # and counted again after that (reconciler passes, relay polls, the nudge jobs
            # Redis kept): the delivery was never sent a second time
            assert len(receiver.received) == 1
    finally:
        await client.aclose()
        worker.stop()
        proc.stop()
        redis.stop()


@pytest.fixture
async def provider() -> AsyncIterator[SlowProvider]:
    async with SlowProvider() as slow:
        yield slow


async def test_two_hosts_with_skewed_clocks_share_one_semaphore(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], provider: SlowProvider
) -> None:
    sem_env = {
        "OPSGRAPH_LLM_BASE_URL": provider.url + "/v1",
        "OPSGRAPH_LLM_MAX_CONCURRENT": "1",
        "OPSGRAPH_LLM_RESERVED_HIGH_PRIORITY": "0",
        "OPSGRAPH_LLM_LEASE_TTL_SECONDS": "3",
    }
    # given two hosts whose clocks are 30 s apart, sharing one slot (each with its own queue,
    # so both surely take part: the slot is one for every queue)
    spawn_worker("worker-clock-ok", "skewq_ok", concurrency=4, **sem_env)
    spawn_worker(
        "worker-clock-behind",
        "skewq_behind",
        concurrency=4,
        PYTHONPATH=f"{SKEWED_CLOCK}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        OPSGRAPH_TEST_CLOCK_SKEW_SECONDS="-30",
        **sem_env,
    )
    ids = [
        (
            await admin.data(
                "SubmitTask",
                input={"operation": "chat_completion", "queue": queue, "input": {"prompt": "p"}},
            )
        )["submitTask"]["task"]["id"]
        for _ in range(3)
        for queue in ("skewq_ok", "skewq_behind")
    ]
    done = [await wait_for_status(admin, t, {"COMPLETED"}, timeout=60) for t in ids]
    # then the provider never served two calls at once, and both hosts took part
    assert provider.peak["all"] == 1
    assert {t["workerName"] for t in done} == {"worker-clock-ok", "worker-clock-behind"}


async def test_waiting_for_a_slot_does_not_count_against_the_attempt(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    # given one slot, a 1 s attempt timeout and five 0.6 s calls: the last waits ~2.4 s
    spawn_worker(
        "worker-backlog",
        "backlogq",
        concurrency=5,
        OPSGRAPH_LLM_MAX_CONCURRENT="1",
        OPSGRAPH_LLM_RESERVED_HIGH_PRIORITY="0",
        OPSGRAPH_JOB_TIMEOUT_SECONDS="1",
    )
    ids = [
        (
            await admin.data(
                "SubmitTask",
                input={
                    "operation": "chat_completion",
                    "queue": "backlogq",
                    "input": {"prompt": f"p{i}"},
                    "config": {"simulate": {"latency_ms": 600}},
                },
            )
        )["submitTask"]["task"]["id"]
        for i in range(5)
    ]
    done = [await wait_for_status(admin, t, {"COMPLETED", "FAILED"}, timeout=30) for t in ids]
    # then every task completed on its first attempt, none timed out or was resumed
    assert [t["status"] for t in done] == ["COMPLETED"] * 5
    assert all(t["attempts"] == 1 and not t["isResumed"] and not t["errors"] for t in done)
    first_created = min(t["createdAt"] for t in done)
    last_started = max(t["startedAt"] for t in done)
    from datetime import datetime

    waited = datetime.fromisoformat(last_started) - datetime.fromisoformat(first_created)
    assert waited.total_seconds() > 1.5  # the backlog really was longer than the timeout


async def test_a_retry_runs_at_the_head_of_its_queue_after_its_backoff(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    spawn_worker("worker-retryq", "retryq", concurrency=1)
    # given a low-priority task whose first attempt fails after 0.5 s
    flaky = (
        await _submit(
            admin,
            queue="retryq",
            priority=10,
            config={"simulate": {"latency_ms": 500, "fail_attempts": 1}},
        )
    )["task"]["id"]
    await wait_for_status(admin, flaky, {"RUNNING"})
    # and five fresh high-priority tasks queued behind it meanwhile
    fresh = [
        (
            await _submit(
                admin, queue="retryq", priority=90, config={"simulate": {"latency_ms": 300}}
            )
        )["task"]["id"]
        for _ in range(5)
    ]
    retried = await wait_for_status(admin, flaky, {"COMPLETED"}, timeout=30)
    others = [await wait_for_status(admin, t, {"COMPLETED"}, timeout=30) for t in fresh]
    # then after its backoff it ran before the fresh tasks that were still waiting
    assert retried["attempts"] == 2 and retried["retryCount"] == 1
    started_before = [t for t in others if t["startedAt"] < retried["startedAt"]]
    second_start = [t["at"] for t in retried["transitions"] if t["toStatus"] == "RUNNING"][-1]
    later = [t for t in others if t["startedAt"] > second_start]
    assert len(later) >= 3, (second_start, [t["startedAt"] for t in others])
    assert len(started_before) <= 2


async def test_manual_retry_resets_the_retry_count(admin: GraphQLClient, worker: Proc) -> None:
    # given a task that failed for good after one automatic retry
    fail_until = time.time() + 2.0
    task_id = (
        await _submit(
            admin,
            queue="default",
            maxRetries=1,
            config={"simulate": {"latency_ms": 1, "fail_until": fail_until}},
        )
    )["task"]["id"]
    failed = await wait_for_status(admin, task_id, {"FAILED"})
    assert failed["retryCount"] == 1
    # when an operator retries it once its cause is gone
    await wait_for(lambda: time.time() >= fail_until, what="the failures' cause to pass")
    await admin.data("RetryTask", id=task_id)
    # then it starts over with a fresh retry count
    task = await wait_for_status(admin, task_id, {"COMPLETED"})
    assert task["retryCount"] == 0 and task["attempts"] == 1


async def test_cancel_all_works_in_batches(admin: GraphQLClient, engine: Any) -> None:
    # given 600 queued LLM tasks on a queue no worker consumes (more than one batch)
    for _ in range(600):
        await admin.data(
            "SubmitTask",
            input={"operation": "chat_completion", "queue": "parked", "input": {"prompt": "x"}},
        )
    response = await admin.http.delete("/api/v1/llm/tasks")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["cancelled"] == 600
    async with engine.connect() as conn:
        statuses = (
            await conn.execute(text("SELECT status, count(*) FROM tasks GROUP BY status"))
        ).all()
    assert dict(statuses) == {"CANCELLED": 600}


async def test_task_counters_equal_a_count_of_the_rows(
    admin: GraphQLClient, worker: Proc, engine: Any
) -> None:
    # given a mix: completed, failed after retries, cancelled while queued and while running,
    # manually retried, tokens and cost recorded
    done = await _submit(admin, queue="default", config={"simulate": {"latency_ms": 1}})
    failing = await _submit(
        admin, queue="default", maxRetries=1, config={"simulate": {"fail_attempts": 9}}
    )
    parked = await _submit(admin, queue="parked", originTenantId="acme")
    long = await _submit(admin, queue="default", config={"simulate": {"latency_ms": 30000}})
    tokens = {"input_tokens": 7, "output_tokens": 3}  # what the simulated provider reports
    chat = await admin.data(
        "SubmitTask",
        input={
            "operation": "chat_completion",
            "input": {"prompt": "hi"},
            "config": {"simulate": tokens},
        },
    )
    await wait_for_status(admin, done["task"]["id"], {"COMPLETED"})
    await wait_for_status(admin, failing["task"]["id"], {"FAILED"})
    await wait_for_status(admin, chat["submitTask"]["task"]["id"], {"COMPLETED"})
    await admin.data("CancelTask", id=parked["task"]["id"])
    await admin.data("RetryTask", id=parked["task"]["id"])
    await wait_for_status(admin, long["task"]["id"], {"RUNNING"})
    await admin.data("CancelTask", id=long["task"]["id"])
    await wait_for_status(admin, long["task"]["id"], {"CANCELLED"})
    # then the maintained counters equal an independent count over the rows
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.services.tasks.counters import task_counts

    async with AsyncSession(engine) as session:
        counted = {
            (c.queue, c.status, c.tenant_id): (c.tasks, c.input_tokens, c.output_tokens)
            for c in await task_counts(session=session)
        }
        rows = (
            await session.execute(
                text(
                    "SELECT queue, status, origin_tenant_id, count(*), sum(input_tokens), "
                    "sum(output_tokens) FROM tasks GROUP BY 1, 2, 3"
                )
            )
        ).all()
    expected = {(q, s, t): (n, tin, tout) for q, s, t, n, tin, tout in rows}
    assert counted == expected
    assert expected[("parked", "QUEUED", "acme")] == (1, 0, 0)
    assert expected[("llm", "COMPLETED", None)] == (1, 7, 3)
