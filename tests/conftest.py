"""Fixtures: real stores, a real API server and worker (session-wide), clean state per test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.auth.tokens import issue_token
from app.config import Settings
from app.db.base import make_engine
from app.platform.embedded import free_port
from tests.client import GraphQLClient
from tests.processes import Proc, fork_server, start_server, start_worker
from tests.stores import Stores, open_stores
from tests.tables import truncate_statement
from tests.waiting import wait_for

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-keys"
WEBHOOK_SECRET = "test-webhook-secret"

# pytest runs on two pytest-xdist workers (pyproject: -n 2 --dist loadgroup), each with its own
# database, Redis database, API and worker processes, ports and temporary folders
# (tests/stores.py). The tests of a group below run one after another on one worker:
SERIAL_GROUPS = {
    # one Chromium per run, not one per worker; the console's dev-stack test starts a stack
    "tests/test_console.py": "browser",
    # each stops an embedded Redis and starts it again on the same port: two at once could
    # take each other's freed port
    "tests/test_redis_restart.py": "redis_restart",
    "tests/test_hardening.py::test_effects_survive_a_redis_outage": "redis_restart",
    "tests/test_llm_queue.py::test_503_while_redis_is_down_then_recovery": "redis_restart",
    "tests/test_monitoring.py::test_health_names_the_component_that_is_down": "redis_restart",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for prefix, group in SERIAL_GROUPS.items():
            if item.nodeid == prefix or item.nodeid.startswith((prefix + "::", prefix + "[")):
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    s = open_stores(tmp_path_factory.mktemp("stores"))
    yield s
    s.close()


@pytest.fixture(scope="session")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every process of the session reads the monitoring clock's offset here (see
    app/platform/clock.py); tests that move it put it back."""
    path = tmp_path_factory.mktemp("clock") / "offset"
    # (the folder also serves as the processes' data folder: exports land there)
    path.write_text("0")
    return path


@pytest.fixture(scope="session")
def channel_port() -> int:
    """Where the operator's alert channels (slack, pagerduty) deliver in this session; a test
    that looks at them listens there (`channel_receiver`)."""
    return free_port()


@pytest.fixture(scope="session")
def env(stores: Stores, clock_file: Path, channel_port: int) -> dict[str, str]:
    """Environment for server and worker processes: fast timings so recovery is quick."""
    fork_server()  # it imports opsgraph while the session sets up (tests/forkserver.py)
    return {
        "OPSGRAPH_DATABASE_URL": stores.database_url,
        "OPSGRAPH_REDIS_URL": stores.redis_url,
        "OPSGRAPH_JWT_SECRET": JWT_SECRET,
        "OPSGRAPH_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPSGRAPH_DEV": "1",
        "OPSGRAPH_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "OPSGRAPH_HEARTBEAT_TTL_SECONDS": "2",
        "OPSGRAPH_RECONCILE_INTERVAL_SECONDS": "1",
        # the session's workers look for due tasks once a second (less load on two cores);
        # the tests of time give their own workers the default 0.2 s
        "OPSGRAPH_DUE_POLL_SECONDS": "1",
        "OPSGRAPH_RECONCILE_GRACE_SECONDS": "1",
        "OPSGRAPH_RETRY_BASE_DELAY_SECONDS": "0.05",
        "OPSGRAPH_RETRY_MAX_DELAY_SECONDS": "0.2",
        "OPSGRAPH_SIMULATED_LATENCY_MS": "10",
        "OPSGRAPH_SYNC_WAIT_SECONDS": "5",
        "OPSGRAPH_WEBHOOK_MAX_ATTEMPTS": "4",
        # The local receivers listen on 127.0.0.1; the SSRF tests turn this off again.
        "OPSGRAPH_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
        "OPSGRAPH_OUTBOX_POLL_SECONDS": "0.2",
        # operator channels are on their own allow-list (the receiver is local)
        "OPSGRAPH_ALERT_CHANNEL_URLS": json.dumps(
            {
                "slack": f"http://127.0.0.1:{channel_port}/slack",
                "pagerduty": f"http://127.0.0.1:{channel_port}/pagerduty",
            }
        ),
        "OPSGRAPH_ALERT_CHANNEL_ALLOWED_TARGETS": '["127.0.0.1/32"]',
        "OPSGRAPH_WS_REAUTH_SECONDS": "1",
        "OPSGRAPH_METRICS_CACHE_SECONDS": "0",
        # health reads what tests just changed (a breaker opened); the cache is tested on a
        # server of its own (tests/test_trust.py)
        "OPSGRAPH_HEALTH_CACHE_SECONDS": "0",
        "OPSGRAPH_METRICS_KEY": "scrape-key-for-tests",
        "OPSGRAPH_AGENT_OFFLINE_SECONDS": "2",
        "OPSGRAPH_AGENT_REPORT_SECONDS": "0.5",
        "OPSGRAPH_ALERT_EVAL_INTERVAL_SECONDS": "0.5",
        "OPSGRAPH_MONITORING_CLOCK_FILE": str(clock_file),
        "OPSGRAPH_DATA_DIR": str(clock_file.parent / "data"),
    }


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Settings:
    def value(raw: str) -> Any:  # JSON values, as pydantic-settings reads them from the env
        return json.loads(raw) if raw[:1] in "[{" else raw

    return Settings(**{k.removeprefix("OPSGRAPH_").lower(): value(v) for k, v in env.items()})


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def server(env: dict[str, str], logs: Path) -> Iterator[str]:
    proc, base = start_server(env, logs)
    yield base
    proc.stop()


@pytest.fixture(scope="session")
def worker(env: dict[str, str], logs: Path) -> Iterator[Proc]:
    """The session's worker consumes the standard queues (llm, operations, default)."""
    proc = start_worker(
        env, logs, name="worker-main", concurrency=10, queues="llm,operations,default"
    )
    yield proc
    proc.stop()


@pytest.fixture
def spawn_worker(env: dict[str, str], logs: Path) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def spawn(
        name: str,
        queues: str,
        concurrency: int = 4,
        args: Sequence[str] = (),
        **extra_env: str,
    ) -> Proc:
        proc = start_worker(
            {**env, **extra_env},
            logs,
            name=name,
            queues=queues,
            concurrency=concurrency,
            extra_args=args,
        )
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        proc.kill()


@pytest.fixture(scope="session")
def engine(stores: Stores) -> Any:
    return make_engine(stores.database_url, pool_size=2)


@pytest.fixture
async def redis_client(stores: Stores) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stores.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def prompt_defaults(engine: Any) -> str:
    """The prompts the migrations leave (read before any test changes them), as JSON rows."""
    async with engine.connect() as conn:
        rows = await conn.scalar(
            text(
                "SELECT coalesce(jsonb_agg(to_jsonb(p)), '[]') FROM prompt_versions p"
                " WHERE version = 1 AND author = 'opsgraph'"
            )
        )
    return json.dumps(rows)


async def _empty_tables(engine: Any, prompt_defaults: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(truncate_statement()))  # every model's table (tests/tables.py)
        # the LLM statistics' marker row, as the migration leaves it (never reset)
        await conn.execute(text("INSERT INTO llm_stats_state (id, reset_at) VALUES (1, NULL)"))
        # prompts: back to the migration's defaults (version 1 of each model), whatever a
        # test did to them (an import re-creates version 1 with the importer as its author)
        await conn.execute(text("DELETE FROM prompt_versions"))
        await conn.execute(
            text(
                "INSERT INTO prompt_versions (model, version, system_prompt, temperature,"
                " max_tokens, description, author, restored_from, created_at)"
                " SELECT model, version, system_prompt, temperature, max_tokens, description,"
                " author, restored_from, created_at FROM jsonb_populate_recordset("
                " NULL::prompt_versions, CAST(:rows AS jsonb))"
            ),
            {"rows": prompt_defaults},
        )


@pytest.fixture(autouse=True)
async def clean(stores: Stores, engine: Any, prompt_defaults: str) -> AsyncIterator[None]:
    # A test's own workers may still be finishing a transaction (a ticker's pass, a task's
    # completion) that took its locks in another order than the TRUNCATE: PostgreSQL then
    # aborts one of the two, and the clean-up simply runs again.
    for attempt in range(5):
        try:
            await _empty_tables(engine, prompt_defaults)
            break
        except DBAPIError as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
    client = aioredis.Redis.from_url(stores.redis_url)
    # Drop queued jobs but keep the heartbeats of the session's live workers.
    keys = [k async for k in client.scan_iter("arq:*")]
    keys += [k async for k in client.scan_iter("opsgraph:queue:*")]
    keys += [k async for k in client.scan_iter("opsgraph:sem:*")]
    keys += [k async for k in client.scan_iter("opsgraph:breaker:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    yield


@pytest.fixture
async def reconciler_held(redis_client: aioredis.Redis) -> AsyncIterator[None]:
    """Holds the reconciler's lock for the test: rows a test writes straight into the tables
    (a RUNNING task no live worker holds, a QUEUED one never enqueued) stay as written instead
    of being recovered and run by the session's workers while the test reads them."""
    from workers.reconciler import LOCK_KEY

    deadline = asyncio.get_running_loop().time() + 30
    while not await redis_client.set(LOCK_KEY, "tests", nx=True, px=600_000):
        # a pass is under way: its lock is released (left to expire) about an interval later
        assert asyncio.get_running_loop().time() < deadline, "the reconciler's lock stayed taken"
        await asyncio.sleep(0.05)
    yield
    if await redis_client.get(LOCK_KEY) == b"tests":
        await redis_client.delete(LOCK_KEY)


# --- the camera pipeline: a watched folder and the workers of its stages ---------------------


@pytest.fixture
def cameras(tmp_path: Path) -> Path:
    root = tmp_path / "cameras"
    root.mkdir()
    return root


PIPELINE_ENV = {
    "OPSGRAPH_WATCH": "1",
    "OPSGRAPH_CAMERA_SETTLE_SECONDS": "0.3",
    "OPSGRAPH_BATCH_WINDOW_SECONDS": "60",
    "OPSGRAPH_BATCH_IDLE_SECONDS": "2",
    "OPSGRAPH_BATCH_CHECK_SECONDS": "0.2",
    "OPSGRAPH_PIPELINE_MAX_RETRIES": "2",
}
QUEUES = "detection_queue,enrichment_queue,analysis_queue"


@pytest.fixture
def pipeline_worker(
    spawn_worker: Callable[..., Proc], cameras: Path
) -> Iterator[Callable[..., Proc]]:
    def spawn(name: str = "pipeline", **extra: str) -> Proc:
        env = {**PIPELINE_ENV, "OPSGRAPH_CAMERA_ROOT": str(cameras), **extra}
        return spawn_worker(name, QUEUES, concurrency=8, **env)

    yield spawn


@pytest.fixture
async def http(server: str, token_for: Any) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token_for()}"}
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def channel_receiver(channel_port: int) -> AsyncIterator[Any]:
    """The operator's alert channels for one test: `received` holds (channel, headers, body)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from tests.receiver import LocalServer

    async def hook(request: Request) -> Response:
        server.received.append(
            (request.path_params["channel"], dict(request.headers), await request.body())
        )
        return JSONResponse({"ok": True})

    server = LocalServer(
        Starlette(routes=[Route("/{channel}", hook, methods=["POST"])]), port=channel_port
    )
    async with server:
        yield server


def make_token(settings: Settings, role: str = "platform_admin", tenant: str | None = None) -> str:
    return issue_token(settings, role=role, tenant_id=tenant, ttl=3600, subject="test")


@pytest.fixture
def token_for(settings: Settings) -> Callable[..., str]:
    def make(role: str = "platform_admin", tenant: str | None = None) -> str:
        return make_token(settings, role, tenant)

    return make


@pytest.fixture
async def admin(server: str, settings: Settings) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(server, make_token(settings))
    yield client
    await client.aclose()


@pytest.fixture
async def client_for(
    server: str, settings: Settings
) -> AsyncIterator[Callable[..., GraphQLClient]]:
    made: list[GraphQLClient] = []

    def make(role: str = "platform_admin", tenant: str | None = None) -> GraphQLClient:
        c = GraphQLClient(server, make_token(settings, role, tenant))
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


async def wait_for_status(
    client: GraphQLClient, task_id: str, statuses: set[str], timeout: float = 20
) -> dict[str, Any]:
    """The task once it reaches one of `statuses` (tests/waiting.py: a deadline, not a sleep)."""

    async def task() -> dict[str, Any]:
        return (await client.data("Task", id=task_id))["task"] or {}

    return await wait_for(
        task,
        until=lambda t: t.get("status") in statuses,
        what=f"task {task_id} to reach {sorted(statuses)}",
        timeout=timeout,
        every=0.05,
    )
