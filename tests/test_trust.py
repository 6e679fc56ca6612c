"""Trust boundaries of the newer domains (issue 21), one rule per test, each through the doors
it has: prompt import authorship, the cleanup job's privilege and floor, health for tenants
(redacted, cached), alert channels' own allow-list, per-tenant subscription caps and masked
URLs, agent ids owned by a tenant."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.responses import JSONResponse

from app.config import Settings
from tests.client import GraphQLClient, rest_client
from tests.conftest import make_token
from tests.factories import insert_alert
from tests.processes import Proc, start_server
from tests.receiver import Receiver
from tests.waiting import wait_for


async def _count(engine: Any, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)))


# --- prompts: the importer is the author; a history that cannot be rebuilt is refused whole --


async def test_an_import_is_authored_by_its_caller_and_bad_history_stores_nothing(
    server: str, settings: Settings, engine: Any
) -> None:
    history = [
        {"version": 1, "system_prompt": "one", "author": "mallory", "description": "first"},
        {"version": 2, "system_prompt": "two", "author": "mallory", "restored_from": 1},
    ]
    async with rest_client(server, make_token(settings, "platform_admin")) as admin:
        r = await admin.post(
            "/api/ai-audit/prompts/import",
            json={
                "prompts": {"fresh-model": {"system_prompt": "two"}},
                "history": {"fresh-model": history},
            },
        )
        assert r.status_code == 200 and r.json()["imported"] == ["fresh-model"], r.text
        r = await admin.get("/api/ai-audit/prompts/history/fresh-model")
        versions = r.json()["versions"]
        assert {v["author"] for v in versions} == {"test"}, versions  # the caller, not mallory
        assert sorted(v["restored_from"] for v in versions if v["restored_from"]) == [1]
        before = await _count(engine, "SELECT count(*) FROM prompt_versions")
        for bad, field in (
            ({"version": "two", "system_prompt": "x"}, "version"),
            ({"version": 1, "system_prompt": "x", "description": ["a"]}, "description"),
            ({"version": 1, "system_prompt": "x", "restored_from": "one"}, "restored_from"),
        ):
            r = await admin.post(
                "/api/ai-audit/prompts/import",
                json={
                    "prompts": {"other-model": {"system_prompt": "x"}},
                    "history": {"other-model": [bad]},
                },
            )
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["detail"][0]["loc"][-1] == f"history.other-model[0].{field}", r.text
        too_many = [{"version": i + 1, "system_prompt": "x"} for i in range(1001)]
        r = await admin.post(
            "/api/ai-audit/prompts/import",
            json={
                "prompts": {"other-model": {"system_prompt": "x"}},
                "history": {"other-model": too_many},
            },
        )
        assert r.status_code == 422 and "at most 1000" in r.text, r.text
        assert await _count(engine, "SELECT count(*) FROM prompt_versions") == before


# --- the cleanup job ------------------------------------------------------------------------------


async def test_cleanup_needs_an_admin_and_a_floor_unless_forced(
    server: str, settings: Settings, engine: Any, client_for: Callable[..., GraphQLClient]
) -> None:
    tiny = {"job_type": "cleanup", "params": {"older_than_days": 0.0001}}
    async with rest_client(server, make_token(settings, "ai_admin")) as operator:
        r = await operator.post("/api/jobs", json=tiny)
        assert r.status_code == 403 and r.json()["code"] == "insufficient_permissions", r.text
    gql = await client_for("ai_admin").data("StartJob", type="cleanup", params={})
    assert gql["startJob"]["job"] is None
    assert gql["startJob"]["errors"][0]["code"] == "insufficient_permissions"
    assert await _count(engine, "SELECT count(*) FROM tasks WHERE task_type = 'cleanup'") == 0
    async with rest_client(server, make_token(settings, "platform_admin")) as admin:
        r = await admin.post("/api/jobs", json=tiny)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "params.older_than_days"], r.text
        assert await _count(engine, "SELECT count(*) FROM tasks WHERE task_type = 'cleanup'") == 0
        r = await admin.post(
            "/api/jobs",
            json={"job_type": "cleanup", "params": {"older_than_days": 0.0001, "force": True}},
        )
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["metadata"]["requested_by"] == "test" and job["metadata"]["force"] is True


# --- health: statuses and latencies for tenants, probes cached ------------------------------------


@pytest.fixture
async def model_service() -> AsyncIterator[Receiver]:
    down = JSONResponse({"status": "down"}, status_code=500)
    async with Receiver("/{path:path}", reply=lambda _: down, methods=("GET",)) as server:
        yield server


@pytest.fixture
def probed_server(env: dict[str, str], logs: Path, model_service: Receiver) -> Any:
    proc, base = start_server(
        {
            **env,
            # a URL with a credential in it, as model service URLs often have
            "OPSGRAPH_DETECTOR_URL": f"http://127.0.0.1:{model_service.port}/det-secret-token",
            "OPSGRAPH_HEALTH_CACHE_SECONDS": "30",
        },
        logs,
    )
    yield base
    proc.stop()


async def test_health_tells_tenants_statuses_only_and_probes_are_cached(
    probed_server: str, settings: Settings, model_service: Receiver, worker: Proc
) -> None:
    async with rest_client(
        probed_server, make_token(settings, "tenant_admin", "tenant-a")
    ) as tenant:
        for _ in range(5):
            r = await tenant.get("/api/v1/monitoring/health")
            assert r.status_code in (200, 503), r.text
            assert "det-secret-token" not in r.text and "127.0.0.1" not in r.text, r.text
            assert "worker-main" not in r.text and "error" not in r.text, r.text
        providers = next(c for c in r.json()["components"] if c["name"] == "model_providers")
        detector = next(p for p in providers["providers"] if p["name"] == "yolo26")
        assert detector["status"] == "unhealthy" and detector["latency_ms"] is not None
        async with GraphQLClient(
            probed_server, make_token(settings, "tenant_admin", "tenant-a")
        ) as gql:
            body = await gql.raw("{ monitoringHealth { components { name status detail } } }")
            assert "det-secret-token" not in body.text and "worker-main" not in body.text
    async with rest_client(probed_server, make_token(settings, "platform_admin")) as admin:
        r = await admin.get("/api/v1/monitoring/health")
        assert "det-secret-token" in r.text and "worker-main" in r.text, r.text
    # six readers, one probe of the model service (the cache outlives the test)
    assert [r.path for r in model_service.received] == ["/det-secret-token/health"]


# --- outbound targets by purpose ----------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def _delivery(engine: Any, delivery_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, last_error FROM webhook_deliveries WHERE id = :id"),
                {"id": delivery_id},
            )
        ).one()
    return dict(row._mapping)


async def _wait_status(engine: Any, delivery_id: str) -> dict[str, Any]:
    return await wait_for(
        lambda: _delivery(engine, delivery_id),
        until=lambda row: row["status"] != "pending",
        what=f"delivery {delivery_id} to leave pending",
    )


async def test_alert_channels_have_their_own_allow_list_and_user_urls_stay_public(
    spawn_worker: Callable[..., Proc], receiver: Receiver, engine: Any
) -> None:
    # given a worker whose operator lets alert channels reach 127.0.0.1 (an internal bridge),
    # with the switch for user-given URLs off
    spawn_worker(
        "worker-channels",
        "channelq",
        OPSGRAPH_WEBHOOK_ALLOW_PRIVATE_NETWORKS="0",
        OPSGRAPH_ALERT_CHANNEL_ALLOWED_TARGETS='["127.0.0.1/32"]',
    )
    ids = {kind: str(uuid.uuid4()) for kind in ("alert_channel", "monitoring", "task")}
    async with engine.begin() as conn:
        for kind, delivery_id in ids.items():
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (id, kind, object_id, event, url, body,"
                    " tenant_id, queue, status, attempts, next_attempt_at, created_at)"
                    " VALUES (:id, :kind, 'o', 'e', :url, '{}', 'tenant-a', 'channelq',"
                    " 'pending', 0, now(), now())"
                ),
                {"id": delivery_id, "kind": kind, "url": receiver.hook_url},
            )
    # then the channel is delivered; a tenant's subscription and a task webhook to the same
    # address are refused, saying so without naming the address
    assert (await _wait_status(engine, ids["alert_channel"]))["status"] == "delivered"
    for kind in ("monitoring", "task"):
        row = await _wait_status(engine, ids[kind])
        assert row == {"status": "refused", "last_error": "refused: not a public address"}
    assert len(receiver.received) == 1


# --- webhook subscriptions: a cap per tenant, URLs masked ----------------------------------------


async def test_the_subscription_cap_is_per_tenant_and_race_free(
    server: str, settings: Settings, engine: Any
) -> None:
    async with rest_client(server, make_token(settings, "tenant_admin", "tenant-a")) as a:

        async def create(i: int) -> int:
            r = await a.post(
                "/api/v1/monitoring/webhooks",
                json={
                    "url": f"https://hooks.example.com/{i}",
                    "events": ["monitoring.alert_triggered"],
                },
            )
            return r.status_code

        codes = await asyncio.gather(*(create(i) for i in range(110)))
    assert codes.count(201) == 100 and codes.count(422) == 10, codes
    assert await _count(engine, "SELECT count(*) FROM webhook_subscriptions") == 100
    # another tenant (and the installation) still have their own hundred
    for role, tenant in (("tenant_admin", "tenant-b"), ("platform_admin", None)):
        async with rest_client(server, make_token(settings, role, tenant)) as other:
            r = await other.post(
                "/api/v1/monitoring/webhooks",
                json={
                    "url": "https://hooks.example.com/x",
                    "events": ["monitoring.alert_triggered"],
                },
            )
            assert r.status_code == 201, r.text


async def test_subscription_urls_are_shown_in_full_only_to_the_owning_tenants_admins(
    server: str, settings: Settings
) -> None:
    secret_url = "https://hooks.slack.com/services/T000/B000/secret-part"
    async with rest_client(server, make_token(settings, "tenant_admin", "tenant-a")) as a:
        r = await a.post(
            "/api/v1/monitoring/webhooks",
            json={"url": secret_url, "events": ["monitoring.alert_triggered"]},
        )
        assert r.status_code == 201 and r.json()["url"] == secret_url, r.text
        listed = (await a.get("/api/v1/monitoring/webhooks")).json()["subscriptions"]
        assert [s["url"] for s in listed] == [secret_url]
    for role, tenant in (("viewer", "tenant-a"), ("platform_admin", None)):
        async with rest_client(server, make_token(settings, role, tenant)) as other:
            listed = (await other.get("/api/v1/monitoring/webhooks")).json()["subscriptions"]
            assert [s["url"] for s in listed] == ["https://hooks.slack.com/…"], (role, listed)
        gql = GraphQLClient(server, make_token(settings, role, tenant))
        try:
            data = await gql.data("WebhookSubscriptions")
            urls = [s["url"] for s in data["webhookSubscriptions"]]
            assert urls == ["https://hooks.slack.com/…"], (role, urls)
        finally:
            await gql.aclose()


# --- agent ids belong to a tenant ---------------------------------------------------------------


async def test_worker_agent_ids_cannot_be_claimed_and_logs_name_only_own_agents(
    server: str, settings: Settings, engine: Any, client_for: Callable[..., GraphQLClient]
) -> None:
    async with rest_client(server, make_token(settings, "tenant_admin", "tenant-a")) as a:
        r = await a.post(
            "/api/v1/monitoring/agents/opsgraph_worker_not-yet-started/heartbeat",
            json={"name": "mine", "type": "llm_agent"},
        )
        assert r.status_code == 409 and r.json()["code"] == "agent_id_taken", r.text
        gql = await client_for("tenant_admin", "tenant-a").data(
            "ReportHeartbeat",
            agentId="opsgraph_worker_other",
            input={"name": "mine", "type": "llm_agent"},
        )
        assert gql["reportHeartbeat"]["errors"][0]["code"] == "agent_id_taken"
        assert (
            await _count(engine, "SELECT count(*) FROM agents WHERE id LIKE 'opsgraph_worker_not%'")
            == 0
        )
        async with rest_client(server, make_token(settings, "tenant_admin", "tenant-b")) as b:
            r = await b.post(
                "/api/v1/monitoring/agents/agent-of-b/heartbeat", json={"name": "b", "type": "t"}
            )
            assert r.status_code == 200, r.text
        now = datetime.now(UTC).isoformat()
        before = await _count(engine, "SELECT count(*) FROM agent_logs")
        for agent in ("agent-of-b", "never-reported"):
            r = await a.post(
                "/api/v1/monitoring/logs",
                json={
                    "logs": [
                        {"timestamp": now, "level": "info", "message": "fine"},
                        {"timestamp": now, "level": "info", "message": "x", "agent_id": agent},
                    ]
                },
            )
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", "logs", 1, "agent_id"], r.text
        assert await _count(engine, "SELECT count(*) FROM agent_logs") == before


# --- subscriptions deliver none of another tenant's events ---------------------------------------


async def test_subscriptions_deliver_none_of_another_tenants_events(
    server: str, settings: Settings, engine: Any, client_for: Callable[..., GraphQLClient]
) -> None:
    admin = client_for()
    a = client_for("tenant_admin", "tenant-a")
    b_alert = await insert_alert(engine, agent="agent-of-b", tenant="tenant-b")
    a_alert = await insert_alert(engine, agent="agent-of-a", tenant="tenant-a")
    async with (
        a.subscribe("AgentStatusChanged") as a_agents,
        a.subscribe("AlertChanged") as a_alerts,
        # (the session's workers report themselves as agents too: the installation's view is
        # narrowed to B's agent)
        admin.subscribe("AgentStatusChanged", agentId="agent-of-b") as all_agents,
        admin.subscribe("AlertChanged", agentId="agent-of-b") as all_alerts,
    ):
        async with rest_client(server, make_token(settings, "tenant_admin", "tenant-b")) as b:
            r = await b.post(
                "/api/v1/monitoring/agents/agent-of-b/heartbeat", json={"name": "b", "type": "t"}
            )
            assert r.status_code == 200, r.text
            r = await b.post(f"/api/v1/monitoring/alerts/{b_alert}/acknowledge", json={})
            assert r.status_code == 200, r.text
        # the installation sees B's events (they happened) ...
        assert (await all_agents.next())["agentStatusChanged"]["agentId"] == "agent-of-b"
        assert (await all_alerts.next())["alertChanged"]["id"] == b_alert
        # ... and A's subscriptions see A's own next, never B's before them
        async with rest_client(server, make_token(settings, "tenant_admin", "tenant-a")) as mine:
            r = await mine.post(
                "/api/v1/monitoring/agents/agent-of-a/heartbeat", json={"name": "a", "type": "t"}
            )
            assert r.status_code == 200, r.text
            r = await mine.post(f"/api/v1/monitoring/alerts/{a_alert}/acknowledge", json={})
            assert r.status_code == 200, r.text
        assert (await a_agents.next())["agentStatusChanged"]["agentId"] == "agent-of-a"
        assert (await a_alerts.next())["alertChanged"]["id"] == a_alert


async def test_installations_on_one_redis_server_never_hear_each_others_events(
    stores: Any,
) -> None:
    # pub/sub channels are global to a Redis server: two installations on two of its databases
    # (the session's and the next one) must each hear their own events only
    from redis.asyncio import Redis

    from app.platform import events

    base, _, db = stores.redis_url.rpartition("/")
    other_db = (int(db or 0) + 1) % 16
    ours, theirs = Redis.from_url(stores.redis_url), Redis.from_url(f"{base}/{other_db}")
    mine, other = events.Broker(ours), events.Broker(theirs)
    try:
        await mine.start()
        await other.start()
        await asyncio.wait_for(mine.connected.wait(), 10)
        await asyncio.wait_for(other.connected.wait(), 10)
        async with (
            other.subscribe(lambda e: True) as heard_there,
            mine.subscribe(lambda e: True) as heard_here,
        ):
            async with ours.pipeline(transaction=False) as pipe:
                events.publish(pipe, "probe", "k", {"secret": "tenant data"})
                await pipe.execute()
            got = await asyncio.wait_for(heard_here.get(), 10)
            assert got.data == {"secret": "tenant data"}
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(heard_there.get(), 1.0)
    finally:
        await mine.stop()
        await other.stop()
        await ours.aclose()
        await theirs.aclose()
