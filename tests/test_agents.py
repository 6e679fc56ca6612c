"""Seed 004's agents: heartbeats register agents and carry their desired state back, status is
derived (healthy, degraded, offline, paused), figures come from the samples, controls are
recorded and obeyed on the next beat, tenants see only their own agents."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_sessionmaker, utcnow
from app.db.models import Agent, AgentControl, AgentSample
from tests.client import GraphQLClient
from tests.waiting import wait_for

BASE = "/api/v1/monitoring/agents"


def beat(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Voice AI Agent - Drive Thru",
        "type": "voice_ai",
        "version": "2.5.0",
        "location_id": "loc_123",
        "configuration": {"model_primary": "gemini-2.0-flash", "max_concurrent": 10},
        "health": {
            "checks": [
                {"name": "model_connection", "status": "pass", "latency_ms": 45},
                {"name": "memory_usage", "status": "pass", "value": "68%"},
            ]
        },
        "dependencies": [{"service": "gemini-api", "status": "healthy"}],
        "metrics": {
            "requests": 100,
            "errors": 1,
            "errors_by_type": {"timeout": 1},
            "latency_ms": [100.0, 200.0, 300.0, 400.0],
            "tokens": {"input": 1000, "output": 400, "by_model": {"gemini-2.0-flash": 1400}},
        },
    }
    body.update(overrides)
    return body


async def test_heartbeats_register_and_figures_come_from_the_samples(
    client_for: Callable[..., GraphQLClient],
) -> None:
    admin = client_for().http
    first = await admin.post(f"{BASE}/agent_voice_ai_001/heartbeat", json=beat())
    assert first.status_code == 200, first.text
    assert first.json()["desired_state"] == {
        "state": "running",
        "restart_generation": 0,
        "replicas": 1,
        "resume_at": None,
    }
    second = beat(metrics={"requests": 50, "errors": 0, "latency_ms": [500.0, 600.0]})
    assert (
        await admin.post(f"{BASE}/agent_voice_ai_001/heartbeat", json=second)
    ).status_code == 200

    listed = (await admin.get(BASE, params={"type": "voice_ai"})).json()
    assert listed["total"] == 1
    (agent,) = listed["agents"]
    assert agent["id"] == "agent_voice_ai_001" and agent["status"] == "healthy"
    latencies = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0]
    assert agent["metrics"]["requests_24h"] == 150
    assert agent["metrics"]["avg_latency_ms"] == round(statistics.mean(latencies), 1)
    assert agent["metrics"]["error_rate"] == round(1 / 150 * 100, 2)
    assert agent["metrics"]["uptime_percent"] > 0

    detail = (await admin.get(f"{BASE}/agent_voice_ai_001")).json()
    assert detail["configuration"]["model_primary"] == "gemini-2.0-flash"
    assert [c["name"] for c in detail["health"]["checks"]] == ["model_connection", "memory_usage"]
    requests = detail["metrics_detailed"]["requests"]
    assert requests == {
        "total": 150,
        "successful": 149,
        "failed": 1,
        "by_hour": requests["by_hour"],
    }
    assert sum(h["value"] for h in requests["by_hour"]) == 150
    latency = detail["metrics_detailed"]["latency"]
    assert latency["p50_ms"] == statistics.median(latencies)
    assert detail["metrics_detailed"]["tokens"] == {
        "input": 1000,
        "output": 400,
        "by_model": {"gemini-2.0-flash": 1400},
    }
    assert detail["recent_errors"][0]["error"] == "timeout"
    assert detail["dependencies"] == [{"service": "gemini-api", "status": "healthy"}]


async def fleet(client: httpx.AsyncClient) -> dict[str, str]:
    """The test's agents and their status (opsgraph's own workers report too: left out)."""
    agents = (await client.get(BASE, params={"type": "voice_ai"})).json()["agents"]
    return {a["id"]: a["status"] for a in agents}


async def test_status_is_derived(
    client_for: Callable[..., GraphQLClient],
) -> None:
    admin = client_for().http
    failing = beat(health={"checks": [{"name": "model_connection", "status": "fail"}]})
    await admin.post(f"{BASE}/a_failing/heartbeat", json=failing)
    noisy = beat(metrics={"requests": 10, "errors": 3})
    await admin.post(f"{BASE}/a_noisy/heartbeat", json=noisy)
    await admin.post(f"{BASE}/a_starting/heartbeat", json=beat(state="starting"))
    await admin.post(f"{BASE}/a_quiet/heartbeat", json=beat())
    statuses = await fleet(admin)
    assert statuses == {
        "a_failing": "degraded",
        "a_noisy": "degraded",
        "a_starting": "starting",
        "a_quiet": "healthy",
    }
    degraded = (await admin.get(BASE, params={"status": "degraded", "type": "voice_ai"})).json()
    assert {a["id"] for a in degraded["agents"]} == {"a_failing", "a_noisy"}
    assert any(i["type"] == "high_error_rate" for i in degraded["agents"][1]["issues"])
    # no heartbeat for longer than OPSGRAPH_AGENT_OFFLINE_SECONDS (2 in tests): offline soon
    # after those 2 s (the status is derived when read)
    await wait_for(
        lambda: fleet(admin),
        until=lambda now: now["a_starting"] == "offline",
        what="a_starting to go offline",
        timeout=4,
    )
    await admin.post(f"{BASE}/a_quiet/heartbeat", json=beat())
    statuses = await fleet(admin)
    assert statuses["a_quiet"] == "healthy" and statuses["a_starting"] == "offline"


async def test_pause_is_obeyed_and_ends_when_due(
    client_for: Callable[..., GraphQLClient], engine: AsyncEngine
) -> None:
    admin = client_for().http
    await admin.post(f"{BASE}/agent_x/heartbeat", json=beat())
    paused = await admin.post(
        f"{BASE}/agent_x/pause", json={"reason": "Maintenance window", "duration_minutes": 30}
    )
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["previous_status"] == "healthy" and body["current_status"] == "paused"
    again = await admin.post(f"{BASE}/agent_x/pause", json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "agent_already_paused"
    reply = (await admin.post(f"{BASE}/agent_x/heartbeat", json=beat())).json()
    assert reply["desired_state"]["state"] == "paused" and reply["status"] == "paused"

    # the pause's time passes (moved into the past rather than waited for)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Agent)
            .where(Agent.id == "agent_x")
            .values(resume_at=utcnow() - timedelta(seconds=1))
        )
    reply = (await admin.post(f"{BASE}/agent_x/heartbeat", json=beat())).json()
    assert reply["desired_state"]["state"] == "running" and reply["status"] == "healthy"
    async with sessionmaker() as session:
        actions = (
            await session.execute(
                select(AgentControl.action, AgentControl.reason, AgentControl.actor)
                .where(AgentControl.agent_id == "agent_x")
                .order_by(AgentControl.id)
            )
        ).all()
    assert [a for a, _, _ in actions] == ["pause", "auto_resume"]
    assert actions[0][1] == "Maintenance window" and actions[0][2] != "opsgraph"


async def test_restart_scale_and_errors(
    client_for: Callable[..., GraphQLClient],
) -> None:
    admin = client_for().http
    await admin.post(f"{BASE}/agent_y/heartbeat", json=beat())
    restarted = (
        await admin.post(f"{BASE}/agent_y/restart", json={"reason": "Memory leak", "force": False})
    ).json()
    assert restarted["restart_generation"] == 1
    scaled = (await admin.post(f"{BASE}/agent_y/scale", json={"replicas": 5})).json()
    assert scaled == {**scaled, "previous_replicas": 1, "replicas": 5}
    reply = (await admin.post(f"{BASE}/agent_y/heartbeat", json=beat())).json()
    assert reply["desired_state"]["restart_generation"] == 1
    assert reply["desired_state"]["replicas"] == 5
    assert (await admin.post(f"{BASE}/agent_y/scale", json={"replicas": -1})).status_code == 422
    missing = await admin.get(f"{BASE}/agent_nope")
    assert missing.status_code == 404 and missing.json()["code"] == "agent_not_found"
    assert (await admin.post(f"{BASE}/agent_nope/pause")).json()["code"] == "agent_not_found"
    resumed = (await admin.post(f"{BASE}/agent_y/resume")).json()
    assert resumed["previous_status"] == "healthy"


async def test_tenants_see_and_steer_only_their_agents(
    client_for: Callable[..., GraphQLClient],
) -> None:
    alice = client_for("tenant_admin", "alice").http
    bob = client_for("tenant_admin", "bob").http
    viewer = client_for("viewer").http
    assert (await alice.post(f"{BASE}/a_alice/heartbeat", json=beat())).status_code == 200
    assert (await bob.post(f"{BASE}/a_bob/heartbeat", json=beat())).status_code == 200
    assert [a["id"] for a in (await alice.get(BASE)).json()["agents"]] == ["a_alice"]
    assert (await alice.get(f"{BASE}/a_bob")).status_code == 404
    assert (await alice.post(f"{BASE}/a_bob/pause")).status_code == 404
    # bob cannot take over alice's agent id by reporting it
    taken = await bob.post(f"{BASE}/a_alice/heartbeat", json=beat())
    assert taken.status_code == 409 and taken.json()["code"] == "agent_id_taken"
    assert (await viewer.get(f"{BASE}/a_alice")).status_code == 200
    assert (await viewer.post(f"{BASE}/a_alice/pause")).status_code == 403


async def test_agents_in_graphql(
    client_for: Callable[..., GraphQLClient], admin: GraphQLClient
) -> None:
    rest = client_for().http
    for i in range(5):
        body = beat(type="chat" if i % 2 else "voice", tenant_id="t-gql")
        await rest.post(f"{BASE}/agent_{i}/heartbeat", json=body)
    mine = {"tenantId": "t-gql"}
    first = (await admin.data("Agents", first=2, filter=mine))["agents"]
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"]
    rest_page = (
        await admin.data("Agents", first=10, after=first["pageInfo"]["endCursor"], filter=mine)
    )["agents"]
    ids = [e["node"]["id"] for e in first["edges"] + rest_page["edges"]]
    assert ids == [f"agent_{i}" for i in range(5)]
    chat = (await admin.data("Agents", filter={"type": "chat", "tenantId": "t-gql"}))["agents"]
    assert [e["node"]["id"] for e in chat["edges"]] == ["agent_1", "agent_3"]

    paused = (await admin.data("PauseAgent", id="agent_0", durationMinutes=5))["pauseAgent"]
    assert paused["desiredState"] == "paused" and paused["resumeAt"] and not paused["errors"]
    twice = (await admin.data("PauseAgent", id="agent_0"))["pauseAgent"]
    assert twice["errors"][0]["code"] == "agent_already_paused"
    one = (await admin.data("Agent", id="agent_0"))["agent"]
    assert one["status"] == "PAUSED" and one["metrics"]["requests24h"] == 100
    assert (await admin.data("ScaleAgent", id="agent_0", replicas=-1))["scaleAgent"]["errors"]
    assert (await admin.data("ScaleAgent", id="agent_0", replicas=3))["scaleAgent"]["replicas"] == 3
    restarted = (await admin.data("RestartAgent", id="agent_0"))["restartAgent"]
    assert restarted["restartGeneration"] == 1
    assert (await admin.data("ResumeAgent", id="agent_0"))["resumeAgent"]["desiredState"] == (
        "running"
    )
    missing = (await admin.data("ResumeAgent", id="nope"))["resumeAgent"]
    assert missing["errors"][0]["code"] == "agent_not_found"
    assert (await admin.data("Agent", id="nope"))["agent"] is None


async def test_workers_report_themselves_as_agents(
    client_for: Callable[..., GraphQLClient], worker: Any
) -> None:
    admin = client_for().http

    async def worker_agents() -> list[str]:
        body = (await admin.get(BASE, params={"type": "opsgraph_worker"})).json()
        return [a["id"] for a in body["agents"]]

    await wait_for(
        worker_agents,
        until=lambda ids: "opsgraph_worker_worker-main" in ids,
        what="the session's worker to report itself as an agent",
        timeout=10,
    )
    detail = (await admin.get(f"{BASE}/opsgraph_worker_worker-main")).json()
    assert detail["configuration"]["queues"] == ["llm", "operations", "default"]
    assert detail["status"] in ("healthy", "starting")


async def test_uptime_counts_only_covered_time(
    client_for: Callable[..., GraphQLClient], engine: AsyncEngine
) -> None:
    """Beats at -60, -50 and -40 minutes, then silence: with the offline threshold at 2 s (the
    tests' setting) each gap and the silence since count 2 s, the first beat nothing."""
    admin = client_for().http
    await admin.post(f"{BASE}/a_uptime/heartbeat", json=beat(type="uptime"))
    now = utcnow()
    async with make_sessionmaker(engine)() as session, session.begin():
        await session.execute(
            update(Agent)
            .where(Agent.id == "a_uptime")
            .values(
                first_seen_at=now - timedelta(hours=1),
                last_heartbeat_at=now - timedelta(minutes=40),
            )
        )
        await session.execute(
            update(AgentSample)
            .where(AgentSample.agent_id == "a_uptime")
            .values(at=now - timedelta(minutes=60))
        )
        for minutes in (50, 40):
            session.add(AgentSample(agent_id="a_uptime", at=now - timedelta(minutes=minutes)))
    (agent,) = (await admin.get(BASE, params={"type": "uptime"})).json()["agents"]
    assert agent["status"] == "offline"
    assert agent["metrics"]["uptime_percent"] == pytest.approx(6 / 3600 * 100, abs=0.01)
