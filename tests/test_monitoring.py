"""Seed 004 beyond the agents: alert rules that fire once, count occurrences and resolve (by an
operator or by themselves), signed webhooks to subscriptions, live alert and status feeds, log
search, metric series and exports, the dashboard and health. Real API and worker processes,
simulated agents as `opsgraph agent-sim` processes, a local webhook receiver; a rule's "for"
clause is exercised by moving the shared monitoring clock, never by waiting minutes."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.client import GraphQLClient, rest_client
from tests.conftest import WEBHOOK_SECRET
from tests.factories import insert_alert
from tests.receiver import LocalServer, Receiver
from tests.signatures import signed_by
from tests.test_agents import beat
from tests.waiting import wait_for

MON = "/api/v1/monitoring"
SECRET = "subscription-secret-0123456789"
# A rule that holds for the canary agent on every pass: its alert's occurrence count tells how
# many evaluator passes have run (negative checks wait for passes, not for time).
CANARY_RULE = {
    "name": "Canary",
    "condition": {"metric": "failing_health_checks", "operator": "gt", "threshold": 0},
    "severity": "info",
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


@pytest.fixture
def move_clock(clock_file: Path) -> Iterator[Callable[[float], None]]:
    """Set the monitoring clock of every process `seconds` ahead; put back afterwards."""

    def move(seconds: float) -> None:
        clock_file.write_text(str(seconds))

    yield move
    clock_file.write_text("0")


def of_agent(items: list[dict[str, Any]], agent_id: str = "sim_b_001") -> list[dict[str, Any]]:
    return [d for d in items if d["data"].get("agent_id") == agent_id]


def deliveries(receiver: Receiver, event: str) -> list[dict[str, Any]]:
    """Bodies the receiver got for `event`, each checked against the subscription's secret."""
    out = []
    for got in receiver.received:
        if got.headers.get("x-opsgraph-event") != event:
            continue
        assert signed_by(SECRET, got.headers, got.body), "a delivery with a bad signature"
        out.append(got.json())
    return out


async def alerts_of(client: httpx.AsyncClient, agent_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"{MON}/alerts", params={"agent_id": agent_id})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["alerts"]
    return found


async def subscribe_receiver(
    client: httpx.AsyncClient, receiver: Receiver, events: list[str]
) -> dict[str, Any]:
    r = await client.post(
        f"{MON}/webhooks", json={"url": receiver.hook_url, "events": events, "secret": SECRET}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def agent_sim(server: str, token: str, prefix: str, logs: Path) -> subprocess.Popen[bytes]:
    out = (logs / f"agent-sim-{prefix}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "agent-sim",
            "--url",
            server,
            "--token",
            token,
            "--count",
            "1",
            "--prefix",
            prefix,
            "--interval",
            "0.3",
            "--seed",
            "7",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


async def start_canary(client: httpx.AsyncClient) -> None:
    failing = beat(type="canary", health={"checks": [{"name": "canary", "status": "fail"}]})
    r = await client.post(f"{MON}/agents/canary/heartbeat", json=failing)
    assert r.status_code == 200, r.text


async def evaluator_passes(client: httpx.AsyncClient, n: int = 2) -> None:
    """Return once the alert evaluator has run `n` more passes."""

    async def count() -> int:
        found = [a for a in await alerts_of(client, "canary") if a["rule_name"] == "Canary"]
        return int(found[0]["occurrence_count"]) if found else 0

    start = await wait_for(count, what="the canary alert")

    async def grown() -> bool:
        return await count() >= start + n

    await wait_for(grown, what=f"{n} evaluator passes")


async def test_an_agent_that_stops_is_alerted_signed_live_and_resolved(
    server: str,
    worker: Any,
    token_for: Callable[..., str],
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    receiver: Receiver,
    channel_receiver: LocalServer,
    logs: Path,
) -> None:
    rest = client_for().http
    await subscribe_receiver(
        rest,
        receiver,
        [
            "monitoring.alert_triggered",
            "monitoring.alert_resolved",
            "monitoring.agent_status_changed",
            "monitoring.agent_restarted",
        ],
    )
    rule = {
        "name": "Agent Offline",
        "condition": {"metric": "heartbeat_age_seconds", "operator": "gt", "threshold": 3},
        "severity": "critical",
        "channels": ["slack", "pagerduty"],
        "auto_remediate": {"action": "restart", "max_attempts": 2},
    }
    put = await rest.put(f"{MON}/alerts/rules", json={"rules": [rule, CANARY_RULE]})
    assert put.status_code == 200, put.text
    assert [r["name"] for r in put.json()["rules"]] == ["Agent Offline", "Canary"]
    await start_canary(rest)

    sims = {
        p: agent_sim(server, token_for("ai_admin"), p, logs) for p in ("sim_a", "sim_b", "sim_c")
    }
    try:
        async with admin.subscribe(
            "AlertChanged", severity="CRITICAL", agentId="sim_b_001"
        ) as feed:

            async def all_healthy() -> bool:
                listed = (await rest.get(f"{MON}/agents", params={"type": "simulated"})).json()
                return sorted(a["status"] for a in listed["agents"]) == ["healthy"] * 3

            # (three processes start first: on a loaded machine that takes a while)
            await wait_for(all_healthy, timeout=60, what="three simulated agents healthy")
            sims["sim_b"].kill()

            fired = (await feed.next(timeout=20))["alertChanged"]
            assert fired["agentId"] == "sim_b_001" and fired["status"] == "ACTIVE"
            assert fired["type"] == "offline" and fired["threshold"]["metric"] == (
                "heartbeat_age_seconds"
            )
            assert fired["threshold"]["current"] > 3

            async def offline() -> bool:
                one = (await rest.get(f"{MON}/agents/sim_b_001")).json()
                return bool(one["status"] == "offline")

            await wait_for(offline, what="sim_b offline")
            # only the silent agent: the others keep beating
            assert await alerts_of(rest, "sim_a_001") == []

            triggered = await wait_for(
                lambda: of_agent(deliveries(receiver, "monitoring.alert_triggered")),
                what="a signed alert_triggered delivery",
            )
            assert triggered[0]["data"]["severity"] == "critical"
            assert triggered[0]["data"]["status"] == "active"

            # and the rule's channels (the operator's Slack and PagerDuty bridges) got it too,
            # signed with the installation's secret
            def on_channels() -> list[tuple[str, Any]]:
                return [
                    (channel, json.loads(body))
                    for channel, headers, body in channel_receiver.received
                    if json.loads(body)["event"] == "monitoring.alert_triggered"
                    and json.loads(body)["data"]["agent_id"] == "sim_b_001"
                    and signed_by(WEBHOOK_SECRET, headers, body)
                ]

            # the two channels deliver independently: wait for both, not for the first
            await wait_for(
                lambda: len({c for c, _ in on_channels()}) == 2,
                what="the alert on the slack and pagerduty channels",
            )
            paged = on_channels()
            assert sorted(c for c, _ in paged) == ["pagerduty", "slack"]
            assert {b["channel"] for _, b in paged} == {"pagerduty", "slack"}
            went_offline = await wait_for(
                lambda: [
                    d
                    for d in deliveries(receiver, "monitoring.agent_status_changed")
                    if d["data"]["agent_id"] == "sim_b_001" and d["data"]["status"] == "offline"
                ],
                what="a signed agent_status_changed (offline) delivery",
            )
            assert went_offline[0]["data"]["previous_status"] == "healthy"

            # auto-remediation restarted it once (the second attempt waits its interval)
            restarted = await wait_for(
                lambda: of_agent(deliveries(receiver, "monitoring.agent_restarted")),
                what="an agent_restarted delivery",
            )
            assert restarted[0]["data"]["requested_by"] == "opsgraph:auto_remediate"
            detail = (await rest.get(f"{MON}/agents/sim_b_001")).json()
            assert detail["restart_generation"] == 1

            # the alert fires once and counts occurrences while the condition holds
            async def counted() -> Any:
                (a,) = await alerts_of(rest, "sim_b_001")
                return a if a["occurrence_count"] >= 3 else None

            alert = await wait_for(counted, what="three occurrences")
            assert alert["status"] == "active" and alert["remediation_attempts"] == 1

            acked = await rest.post(
                f"{MON}/alerts/{alert['id']}/acknowledge", json={"notes": "Looking at it"}
            )
            assert acked.status_code == 200, acked.text
            assert acked.json()["status"] == "acknowledged"
            assert acked.json()["acknowledged_by"] == "test"
            while (live := (await feed.next())["alertChanged"])["status"] != "ACKNOWLEDGED":
                pass
            assert live["acknowledgeNotes"] == "Looking at it"

            resolved = await rest.post(
                f"{MON}/alerts/{alert['id']}/resolve",
                json={"resolution": "Restarted the host", "root_cause": "Power loss"},
            )
            assert resolved.status_code == 200, resolved.text
            body = resolved.json()
            assert body["status"] == "resolved" and body["auto_resolved"] is False
            assert body["root_cause"] == "Power loss" and body["resolved_by"] == "test"
            while (live := (await feed.next())["alertChanged"])["status"] != "RESOLVED":
                pass
            gone = await wait_for(
                lambda: of_agent(deliveries(receiver, "monitoring.alert_resolved")),
                what="a signed alert_resolved delivery",
            )
            assert gone[0]["data"]["id"] == alert["id"]
            again = await rest.post(f"{MON}/alerts/{alert['id']}/resolve", json={})
            assert again.status_code == 409 and again.json()["code"] == "alert_already_resolved"

            # resolved by an operator while still offline: no new alert until the condition
            # has cleared once
            await evaluator_passes(rest, 3)
            assert [a["status"] for a in await alerts_of(rest, "sim_b_001")] == ["resolved"]
            listed = (await rest.get(f"{MON}/alerts", params={"agent_id": "sim_b_001"})).json()
            assert listed["total"] == 1
            assert listed["summary"] == {"critical": 0, "warning": 0, "info": 0}
            missing = await rest.post(
                f"{MON}/alerts/00000000-0000-0000-0000-000000000000/acknowledge"
            )
            assert missing.status_code == 404 and missing.json()["code"] == "alert_not_found"
    finally:
        for proc in sims.values():
            proc.kill()
            proc.wait()


def slow(ms: float) -> dict[str, Any]:
    return beat(type="latency", metrics={"requests": 10, "errors": 0, "latency_ms": [ms] * 10})


async def test_a_latency_rule_waits_for_its_duration_and_resolves_itself(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    receiver: Receiver,
    move_clock: Callable[[float], None],
) -> None:
    rest = client_for().http
    await subscribe_receiver(rest, receiver, ["monitoring.threshold_exceeded"])
    rule = {
        "name": "High Latency",
        "condition": {
            "metric": "p95_latency_ms",
            "operator": "gt",
            "threshold": 1000,
            "duration_minutes": 5,
        },
        "severity": "warning",
        "channels": ["slack", "email"],
        "recipients": ["oncall@example.com"],
    }
    put = await rest.put(f"{MON}/alerts/rules", json={"rules": [rule, CANARY_RULE]})
    assert put.status_code == 200, put.text
    await start_canary(rest)

    async with admin.subscribe("AlertChanged", agentId="slow_1") as feed:
        assert (
            await rest.post(f"{MON}/agents/slow_1/heartbeat", json=slow(2500))
        ).status_code == 200
        exceeded = await wait_for(
            lambda: of_agent(deliveries(receiver, "monitoring.threshold_exceeded"), "slow_1"),
            what="threshold_exceeded when the condition starts to hold",
        )
        assert exceeded[0]["data"]["current"] == 2500.0
        await evaluator_passes(rest)
        assert await alerts_of(rest, "slow_1") == []

        # three minutes on, still slow: the "for" clause has not elapsed
        move_clock(180)
        await rest.post(f"{MON}/agents/slow_1/heartbeat", json=slow(2400))
        await evaluator_passes(rest)
        assert await alerts_of(rest, "slow_1") == []

        # six minutes on: it has held for five
        move_clock(360)
        await rest.post(f"{MON}/agents/slow_1/heartbeat", json=slow(2600))
        fired = (await feed.next(timeout=20))["alertChanged"]
        assert fired["status"] == "ACTIVE" and fired["type"] == "high_latency"
        assert fired["threshold"] == {
            "metric": "p95_latency_ms",
            "operator": "gt",
            "value": 1000.0,
            "current": fired["threshold"]["current"],
        }
        assert fired["threshold"]["current"] > 1000
        assert "exceeds threshold" in fired["message"]
        (alert,) = await alerts_of(rest, "slow_1")
        assert alert["severity"] == "warning" and alert["title"] == "High Latency"

        # twelve minutes on, fast again: the window holds only fast requests, it clears
        move_clock(720)
        await rest.post(f"{MON}/agents/slow_1/heartbeat", json=slow(120))
        while (live := (await feed.next(timeout=20))["alertChanged"])["status"] != "RESOLVED":
            pass
        assert live["autoResolved"] is True and live["resolvedBy"] == "opsgraph"
        assert live["resolution"].startswith("condition cleared")
        assert live["occurrenceCount"] >= 1
    (done,) = await alerts_of(rest, "slow_1")
    assert done["status"] == "resolved" and done["auto_resolved"] is True


async def test_a_timed_pause_is_obeyed_and_ends_when_due(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    move_clock: Callable[[float], None],
) -> None:
    rest = client_for().http
    await rest.post(f"{MON}/agents/pausable/heartbeat", json=beat())
    paused = await rest.post(
        f"{MON}/agents/pausable/pause", json={"reason": "Maintenance", "duration_minutes": 10}
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["resume_at"] is not None
    again = await rest.post(f"{MON}/agents/pausable/pause", json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "agent_already_paused"
    reply = (await rest.post(f"{MON}/agents/pausable/heartbeat", json=beat())).json()
    assert reply["desired_state"]["state"] == "paused"

    # ten minutes later the evaluator resumes it, without waiting for its next beat
    move_clock(601)

    async def resumed() -> bool:
        one = (await rest.get(f"{MON}/agents/pausable")).json()
        return one["status"] != "paused" and one["resume_at"] is None

    await wait_for(resumed, what="the pause to end when due")
    reply = (await rest.post(f"{MON}/agents/pausable/heartbeat", json=beat())).json()
    assert reply["desired_state"]["state"] == "running"


# Recent timestamps: the evaluator prunes logs older than the retention (14 days), and it may
# run a pass at any moment of a test.
LOGGED_AT = datetime.now(UTC).replace(minute=30, second=0, microsecond=123000) - timedelta(hours=1)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def log_entry(message: str, **fields: Any) -> dict[str, Any]:
    return {
        "timestamp": _iso(LOGGED_AT),
        "level": "info",
        "agent_id": "agent_voice_ai_001",
        "message": message,
        **fields,
    }


async def test_logs_are_found_by_words_in_message_and_context(
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
) -> None:
    rest = client_for().http
    batch = [
        log_entry(
            "Speech recognition failed",
            level="error",
            context={"session_id": "sess_001", "error_code": "AUDIO_TOO_NOISY"},
            trace_id="trace_abc123",
        ),
        log_entry("Greeting played", context={"session_id": "sess_002"}),
        log_entry(
            "Model fallback engaged",
            level="warn",
            agent_id="agent_vision_001",
            timestamp=_iso(LOGGED_AT - timedelta(hours=9)),
            context={"fallback": "gemini-2.0-flash"},
        ),
    ]
    stored = await rest.post(f"{MON}/logs", json={"logs": batch})
    assert stored.status_code == 202, stored.text
    assert stored.json() == {"accepted": 3}

    async def search(**params: Any) -> list[str]:
        r = await rest.get(f"{MON}/logs", params=params)
        assert r.status_code == 200, r.text
        return [e["message"] for e in r.json()["logs"]]

    assert await search(search="recognition") == ["Speech recognition failed"]
    assert await search(search="AUDIO_TOO_NOISY") == ["Speech recognition failed"]
    assert await search(search="sess_002") == ["Greeting played"]
    assert await search(search="gemini") == ["Model fallback engaged"]
    assert await search(search="nothing matches this") == []
    assert await search(level="warn") == ["Speech recognition failed", "Model fallback engaged"]
    assert await search(agent_id="agent_vision_001") == ["Model fallback engaged"]
    assert await search(end_time=_iso(LOGGED_AT - timedelta(hours=7))) == ["Model fallback engaged"]
    assert len(await search(limit=2)) == 2
    one = (await rest.get(f"{MON}/logs", params={"search": "recognition"})).json()["logs"][0]
    assert one["trace_id"] == "trace_abc123" and one["context"]["session_id"] == "sess_001"

    # 1,001 entries: 413 and nothing stored
    too_many = await rest.post(f"{MON}/logs", json={"logs": [log_entry("x")] * 1001})
    assert too_many.status_code == 413 and too_many.json()["code"] == "payload_too_large"
    # one bad entry refuses the request, naming its index
    bad = [log_entry("fine"), log_entry("fine"), log_entry("bad", level="loud")]
    refused = await rest.post(f"{MON}/logs", json={"logs": bad})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:4] == ["body", "logs", 2, "level"]
    assert len(await search(limit=1000)) == 3
    assert (await rest.get(f"{MON}/logs", params={"limit": 0})).status_code == 422

    found = (await admin.data("Logs", search="AUDIO_TOO_NOISY"))["logs"]
    assert [(e["message"], e["level"]) for e in found] == [("Speech recognition failed", "ERROR")]

    # a tenant sees its own lines only
    alice = client_for("tenant_admin", "alice").http
    beat = {"name": "alice's", "type": "llm_agent"}
    assert (await alice.post(f"{MON}/agents/alice_agent/heartbeat", json=beat)).status_code == 200
    posted = await alice.post(
        f"{MON}/logs", json={"logs": [log_entry("alice was here", agent_id="alice_agent")]}
    )
    assert posted.status_code == 202, posted.text
    mine = (await alice.get(f"{MON}/logs")).json()["logs"]
    assert [e["message"] for e in mine] == ["alice was here"]


async def insert_samples(engine: Any, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO agent_samples (agent_id, at, requests, errors, errors_by_type,"
                " latencies_ms, input_tokens, output_tokens, tokens_by_model) VALUES (:agent_id,"
                " :at, :requests, :errors, CAST(:errors_by_type AS jsonb), :latencies_ms,"
                " :input_tokens, :output_tokens, CAST(:tokens_by_model AS jsonb))"
            ),
            rows,
        )


def generated_samples(now: datetime, n: int = 400) -> list[dict[str, Any]]:
    rng = random.Random(2026)
    rows = []
    for _ in range(n):
        requests = rng.randint(0, 60)
        errors = rng.randint(0, requests // 5)
        tin, tout = rng.randint(0, 5000), rng.randint(0, 2000)
        rows.append(
            {
                "agent_id": rng.choice(["gen_a", "gen_b", "gen_c"]),
                # an hour old at least: the current hour also holds the workers' own reports
                "at": now - timedelta(seconds=rng.uniform(3600, 23.5 * 3600)),
                "requests": requests,
                "errors": errors,
                "errors_by_type": json.dumps({"timeout": errors} if errors else {}),
                "latencies_ms": [round(rng.uniform(20, 3000), 1) for _ in range(rng.randint(0, 5))],
                "input_tokens": tin,
                "output_tokens": tout,
                "tokens_by_model": json.dumps({"gpt-4o-mini": {"input": tin, "output": tout}}),
            }
        )
    return rows


async def test_metrics_by_hour_equal_an_independent_sql_aggregation(
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    engine: Any,
) -> None:
    rest = client_for().http
    await insert_samples(engine, generated_samples(datetime.now(UTC)))
    r = await rest.get(f"{MON}/metrics", params={"period": "24h", "granularity": "hour"})
    assert r.status_code == 200, r.text
    body = r.json()
    start = datetime.fromisoformat(body["period"]["start"])
    end = datetime.fromisoformat(body["period"]["end"])
    async with engine.connect() as conn:
        expected = {
            row[0]: row[1:]
            for row in (
                await conn.execute(
                    text(
                        "SELECT to_char(date_trunc('hour', at AT TIME ZONE 'UTC'),"
                        " 'YYYY-MM-DD\"T\"HH24'), sum(requests), sum(errors),"
                        " sum(input_tokens), sum(output_tokens)"
                        " FROM agent_samples WHERE at >= :s AND at <= :e GROUP BY 1"
                    ),
                    {"s": start, "e": end},
                )
            ).all()
        }
        latency = {
            row[0]: float(row[1])
            for row in (
                await conn.execute(
                    text(
                        "SELECT to_char(date_trunc('hour', at AT TIME ZONE 'UTC'),"
                        " 'YYYY-MM-DD\"T\"HH24'), avg(x) FROM agent_samples,"
                        " unnest(latencies_ms) x WHERE at >= :s AND at <= :e GROUP BY 1"
                    ),
                    {"s": start, "e": end},
                )
            ).all()
        }
    m = body["metrics"]
    series = m["requests"]["timeseries"]
    assert len(series) in (24, 25)  # every hour of the window, empty ones as zeros
    hours = [p["timestamp"][:13] for p in series]
    assert hours == sorted(hours) and len(set(hours)) == len(hours)
    got = {
        h: (p["value"], e["value"], t["input"], t["output"])
        for h, p, e, t in zip(
            hours,
            series,
            m["errors"]["timeseries"],
            m["tokens"]["timeseries"],
            strict=True,
        )
    }
    current = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    for hour, values in got.items():
        if hour < current:  # (the current hour: workers report while the test reads)
            assert values == tuple(int(v) for v in expected.get(hour, (0, 0, 0, 0))), hour
    for hour, point in zip(hours, m["latency"]["timeseries"], strict=True):
        if hour in latency:
            assert point["value"] == pytest.approx(latency[hour], abs=0.01)
        else:
            assert point["value"] is None
    assert m["requests"]["total"] >= sum(int(v[0]) for h, v in expected.items() if h < current)
    assert sum(m["requests"]["by_agent"].values()) == m["requests"]["total"]
    assert sum(m["errors"]["by_type"].values()) == m["errors"]["total"]

    only = (await rest.get(f"{MON}/metrics", params={"metric": "tokens"})).json()["metrics"]
    assert list(only) == ["tokens"]
    wrong = await rest.get(f"{MON}/metrics", params={"metric": "bogus"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_metric"
    fine = await rest.get(f"{MON}/metrics", params={"period": "30d", "granularity": "minute"})
    assert fine.status_code == 422

    gql = (await admin.data("Metrics", period="24h", granularity="hour"))["metrics"]
    settled = {p["timestamp"][:13]: p["value"] for p in series if p["timestamp"][:13] < current}
    from_gql = {
        p["timestamp"][:13]: p["value"]
        for p in gql["requests"]["timeseries"]
        if p["timestamp"][:13] in settled
    }
    assert from_gql == {h: v for h, v in settled.items() if h in from_gql}
    assert len(from_gql) >= len(settled) - 1  # (the window may have moved by an hour)


async def test_a_metrics_export_is_a_task_whose_file_parses_back(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    engine: Any,
) -> None:
    rest = client_for().http
    now = datetime.now(UTC)
    await insert_samples(engine, generated_samples(now, 100))
    start = (now - timedelta(days=1)).date().isoformat()
    started = await rest.post(
        f"{MON}/metrics/export",
        json={
            "metrics": ["requests", "tokens"],
            "period": {"start": start, "end": now.date().isoformat()},
            "format": "csv",
            "granularity": "hour",
        },
    )
    assert started.status_code == 202, started.text
    export = started.json()
    assert export["status"] in ("queued", "running", "completed")

    async def done() -> Any:
        body = (await rest.get(export["status_url"])).json()
        return body if body["status"] == "completed" else None

    finished = await wait_for(done, what="the export to complete")
    assert finished["rows"] == 48
    download = await rest.get(finished["download_url"])
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert list(rows[0]) == ["timestamp", "requests", "input_tokens", "output_tokens"]
    assert len(rows) == 48
    # before this hour: the workers' own samples (they report the export task) arrive now
    hour = now.replace(minute=0, second=0, microsecond=0)
    async with engine.connect() as conn:
        total = (
            await conn.execute(
                text("SELECT sum(requests) FROM agent_samples WHERE at < :h"), {"h": hour}
            )
        ).scalar()
    exported = sum(
        int(r["requests"]) for r in rows if datetime.fromisoformat(r["timestamp"]) < hour
    )
    assert exported == total

    bad = await rest.post(
        f"{MON}/metrics/export",
        json={"metrics": ["bogus"], "period": {"start": start, "end": start}},
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_metric"
    unknown = await rest.get(f"{MON}/metrics/export/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404 and unknown.json()["code"] == "export_not_found"


async def test_dashboard_costs_and_health(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    settings: Any,
    engine: Any,
) -> None:
    rest = client_for().http
    tokens = {
        "input": 3000,
        "output": 1000,
        "by_model": {
            "gpt-4o-mini": {"input": 2000, "output": 500},
            "gpt-4o": {"input": 1000, "output": 500},
        },
    }
    for agent in ("dash_1", "dash_2"):
        body = beat(
            type="dash",
            metrics={"requests": 100, "errors": 2, "latency_ms": [100.0, 300.0], "tokens": tokens},
        )
        assert (await rest.post(f"{MON}/agents/{agent}/heartbeat", json=body)).status_code == 200
    await rest.post(f"{MON}/agents/dash_2/pause", json={"reason": "quiet"})
    d = (await rest.get(f"{MON}/dashboard", params={"period": "1h"})).json()
    assert d["period"] == "1h"
    assert d["summary"]["paused"] == 1 and d["summary"]["total_agents"] >= 2
    assert d["metrics"]["total_requests"] >= 200 and d["metrics"]["failed_requests"] >= 4
    by_model = {c["model"]: c for c in d["costs"]["cost_by_model"]}
    prices = settings.prices
    for model, used in (("gpt-4o-mini", (4000, 1000)), ("gpt-4o", (2000, 1000))):
        assert by_model[model]["tokens"] == sum(used)
        expected = (
            used[0] / 1000 * prices[model]["input"] + used[1] / 1000 * prices[model]["output"]
        )
        assert by_model[model]["cost"] == pytest.approx(expected, abs=1e-4)
    assert d["costs"]["estimated_cost_usd"] == pytest.approx(
        sum(c["cost"] for c in d["costs"]["cost_by_model"]), abs=1e-3
    )
    assert d["active_alerts"] == 0 and d["top_issues"] == []
    # an active alert is counted and heads the issues
    await insert_alert(
        engine,
        agent="dash_1",
        type="high_latency",
        severity="warning",
        message="dash_1 is slow",
        metric="p95_latency_ms",
    )
    d = (await rest.get(f"{MON}/dashboard", params={"period": "1h"})).json()
    assert d["active_alerts"] == 1
    assert d["top_issues"] == [
        {
            "type": "high_latency",
            "agent": "dash_1",
            "description": "dash_1 is slow",
            "severity": "warning",
        }
    ]
    refused = await rest.get(f"{MON}/dashboard", params={"period": "30d"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "period"]

    gql = (await admin.data("Dashboard", period="1h"))["dashboard"]
    assert gql["summary"]["paused"] == 1
    assert {c["model"] for c in gql["costByModel"]} == set(by_model)

    health = await rest.get(f"{MON}/health")
    assert health.status_code == 200, health.text
    components = {c["name"]: c for c in health.json()["components"]}
    assert components["postgresql"]["status"] == "healthy"
    assert components["postgresql"]["latency_ms"] > 0
    assert components["redis"]["status"] == "healthy"
    assert components["workers"]["status"] == "healthy" and components["workers"]["count"] >= 1
    assert components["model_providers"]["providers"]
    gql_health = (await admin.data("MonitoringHealth"))["monitoringHealth"]
    assert {"postgresql", "redis", "workers"} <= {c["name"] for c in gql_health["components"]}


async def test_rules_are_validated_whole_and_need_an_operator(
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
) -> None:
    rest = client_for().http
    good = {
        "name": "High Error Rate",
        "condition": {
            "metric": "error_rate_percent",
            "operator": "gt",
            "threshold": 5,
            "duration_minutes": 10,
        },
        "severity": "critical",
    }
    assert (await rest.put(f"{MON}/alerts/rules", json={"rules": [good]})).status_code == 200
    unknown = {**good, "name": "Bad", "condition": {**good["condition"], "metric": "vibes"}}
    refused = await rest.put(f"{MON}/alerts/rules", json={"rules": [CANARY_RULE, unknown]})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_metric"
    assert "vibes" in refused.json()["detail"]
    bad_op = {**good, "condition": {**good["condition"], "operator": "around"}}
    wrong = await rest.put(f"{MON}/alerts/rules", json={"rules": [bad_op]})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "rules", 0, "condition", "operator"]
    twice = await rest.put(f"{MON}/alerts/rules", json={"rules": [good, good]})
    assert twice.status_code == 422
    assert "High Error Rate" in twice.json()["detail"][0]["msg"], twice.text
    # nothing of a refused set was applied
    names = [r["name"] for r in (await rest.get(f"{MON}/alerts/rules")).json()["rules"]]
    assert names == ["High Error Rate"]

    viewer = await client_for("viewer").http.put(f"{MON}/alerts/rules", json={"rules": []})
    assert viewer.status_code == 403 and viewer.json()["code"] == "insufficient_permissions"
    tenant = await client_for("tenant_admin", "alice").http.put(
        f"{MON}/alerts/rules", json={"rules": []}
    )
    assert tenant.status_code == 403 and tenant.json()["code"] == "insufficient_permissions"

    rules = [
        {
            "name": "Slow",
            "metric": "p95_latency_ms",
            "operator": "gt",
            "threshold": 900,
            "severity": "WARNING",
            "durationMinutes": 5,
            "autoRemediate": {"action": "restart", "maxAttempts": 2},
        }
    ]
    saved = (await admin.data("SetAlertRules", rules=rules))["setAlertRules"]
    assert not saved["errors"] and saved["rules"][0]["durationMinutes"] == 5
    wrong = await admin.data("SetAlertRules", rules=[{**rules[0], "metric": "vibes"}])
    assert wrong["setAlertRules"]["errors"][0]["code"] == "invalid_metric"
    listed = await admin.data("AlertRules")
    assert [r["name"] for r in listed["alertRules"]] == ["Slow"]
    assert listed["alertRules"][0]["autoRemediate"] == {"action": "restart", "maxAttempts": 2}
    assert "heartbeat_age_seconds" in {m["name"] for m in listed["alertMetrics"]}


async def test_webhook_subscriptions_and_their_delivery_log(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    receiver: Receiver,
) -> None:
    rest = client_for().http
    created = await subscribe_receiver(rest, receiver, ["monitoring.agent_restarted"])
    assert created["secret"] == SECRET and created["events"] == ["monitoring.agent_restarted"]
    listed = (await rest.get(f"{MON}/webhooks")).json()
    assert [s["id"] for s in listed["subscriptions"]] == [created["id"]]
    assert "secret" not in listed["subscriptions"][0]
    assert len(listed["events"]) == 5

    await rest.post(f"{MON}/agents/hooked/heartbeat", json=beat())
    await rest.post(f"{MON}/agents/hooked/restart", json={"reason": "test"})
    await wait_for(
        lambda: of_agent(deliveries(receiver, "monitoring.agent_restarted"), "hooked"),
        what="the restart delivered",
    )

    async def logged() -> Any:
        r = await rest.get(f"{MON}/webhooks/{created['id']}/deliveries")
        found = r.json()["deliveries"]
        return found if found and found[0]["status"] == "delivered" else None

    (delivery,) = await wait_for(logged, what="a delivered entry in the log")
    assert delivery["event"] == "monitoring.agent_restarted" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200

    bad = await rest.post(f"{MON}/webhooks", json={"url": receiver.url, "events": ["nope"]})
    assert bad.status_code == 422
    bad_url = await rest.post(
        f"{MON}/webhooks", json={"url": "ftp://x", "events": ["monitoring.alert_triggered"]}
    )
    assert bad_url.status_code == 422
    # a tenant neither sees nor deletes another's subscription
    alice = client_for("tenant_admin", "alice").http
    assert (await alice.get(f"{MON}/webhooks")).json()["subscriptions"] == []
    assert (await alice.delete(f"{MON}/webhooks/{created['id']}")).status_code == 404

    gql = (await admin.data("WebhookSubscriptions"))["webhookSubscriptions"]
    assert gql[0]["deliveries"][0]["status"] == "delivered"
    made = (
        await admin.data(
            "CreateWebhookSubscription",
            url=receiver.hook_url,
            events=["monitoring.alert_resolved"],
        )
    )["createWebhookSubscription"]
    assert made["secret"].startswith("whsec_") and not made["errors"]
    gone = await admin.data("DeleteWebhookSubscription", id=made["subscription"]["id"])
    assert gone["deleteWebhookSubscription"]["deleted"] is True
    assert (await rest.delete(f"{MON}/webhooks/{created['id']}")).status_code == 204
    assert (await rest.delete(f"{MON}/webhooks/{created['id']}")).status_code == 404


async def test_agents_report_in_through_graphql(
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
) -> None:
    beat_in = {
        "name": "GraphQL agent",
        "type": "gql",
        "healthChecks": [{"name": "model", "status": "pass"}],
        "requests": 20,
        "errors": 1,
        "errorsByType": {"timeout": 1},
        "latencyMs": [120.0, 240.0],
        "inputTokens": 300,
        "outputTokens": 100,
        "tokensByModel": {"gpt-4o-mini": {"input": 300, "output": 100}},
    }
    reply = (await admin.data("ReportHeartbeat", agentId="gql_1", input=beat_in))["reportHeartbeat"]
    assert not reply["errors"] and reply["status"] == "HEALTHY"
    assert reply["desiredState"] == {
        "state": "running",
        "restartGeneration": 0,
        "replicas": 1,
        "resumeAt": None,
    }
    detail = (await client_for().http.get(f"{MON}/agents/gql_1")).json()
    assert detail["metrics_detailed"]["requests"]["total"] == 20
    assert detail["metrics_detailed"]["tokens"]["by_model"] == {"gpt-4o-mini": 400}
    for bad, field in (
        ({**beat_in, "latencyMs": [-1.0]}, "metrics.latency_ms"),
        ({**beat_in, "requests": -5}, "metrics.requests"),
        ({**beat_in, "healthChecks": [{"name": "x", "status": "meh"}]}, "health_checks"),
        ({**beat_in, "tokensByModel": {"m": "lots"}}, "metrics.tokens_by_model"),
        ({**beat_in, "inputTokens": 1.5}, "inputTokens"),
        ({**beat_in, "state": "dancing"}, "state"),
    ):
        refused = await admin.data("ReportHeartbeat", agentId="gql_2", input=bad)
        (error,) = refused["reportHeartbeat"]["errors"]
        assert error["field"] == field, error
    bad_id = await admin.data("ReportHeartbeat", agentId="no spaces", input=beat_in)
    assert bad_id["reportHeartbeat"]["errors"][0]["field"] == "agent_id"
    # nothing of the refused beats was stored
    assert (await client_for().http.get(f"{MON}/agents/gql_2")).status_code == 404


async def test_health_names_the_component_that_is_down(
    env: dict[str, str], logs: Path, tmp_path: Path, settings: Any
) -> None:
    """Given an API process on a Redis of its own; when that Redis stops, both health routes
    answer 503 naming Redis (and only Redis) unhealthy; when it is back, healthy again."""
    from app.platform.embedded import start_redis
    from tests.conftest import make_token
    from tests.processes import start_server

    redis = start_redis(tmp_path, persist=False)
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    own = {**env, "OPSGRAPH_REDIS_URL": redis.url, "OPSGRAPH_HEALTH_CACHE_SECONDS": "0"}
    proc, base = start_server(own, logs)
    try:
        async with rest_client(base, make_token(settings)) as http:
            up = await http.get(f"{MON}/health")
            assert {c["name"]: c["status"] for c in up.json()["components"]}["redis"] == "healthy"
            redis.stop()
            down = await http.get(f"{MON}/health")
            assert down.status_code == 503, down.text
            statuses = {c["name"]: c["status"] for c in down.json()["components"]}
            assert statuses["redis"] == "unhealthy" and statuses["postgresql"] == "healthy"
            assert down.json()["status"] == "unhealthy"
            system = await http.get("/api/system/health")
            assert system.status_code == 503
            assert system.json()["services"]["redis"]["status"] == "unhealthy"
            redis = start_redis(tmp_path, persist=False, port=port)

            async def back() -> bool:
                return (await http.get(f"{MON}/health")).status_code == 200

            await wait_for(back, what="health once Redis is back")
    finally:
        proc.stop()
        redis.stop()
