"""Seed 002's AI audit: every AI decision of the pipeline recorded (model, prompt version,
tokens, latency), events self-evaluated by the LLM judge (idempotent unless forced), batch
audits as jobs, and the leaderboard, recommendations and statistics built on them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from tests.client import GraphQLClient
from tests.processes import Proc
from tests.test_jobs import wait_job
from tests.test_pipeline import analysed_batches, drop, jpeg

AUDIT = "/api/ai-audit"


async def test_decisions_are_audited_and_events_evaluated(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    worker: Any,
    engine: Any,
    admin: GraphQLClient,
) -> None:
    pipeline_worker()
    for camera in ("front_door", "garage"):
        for i in range(2):
            drop(cameras, camera, f"{camera}-{i}.jpg", jpeg(i + (10 if camera == "garage" else 0)))
    batches = await analysed_batches(http, 2)
    event_id, other = (b["event_id"] for b in batches[:2])

    audit = (await http.get(f"{AUDIT}/events/{event_id}")).json()
    assert audit["event_id"] == event_id and audit["audit_id"] is None
    stages = [d["stage"] for d in audit["decisions"]]
    assert stages.count("detection") == 2 and stages.count("enrichment") == 2
    assert stages[-1] == "analysis"
    analysis = audit["decisions"][-1]
    assert analysis["model"] and analysis["prompt_version"] == 1
    async with engine.connect() as conn:
        spent = (
            await conn.execute(
                text("SELECT input_tokens FROM security_events WHERE id = :e"), {"e": event_id}
            )
        ).scalar_one()
    # the analysis's decision records what the event's analysis spent
    assert spent > 0 and analysis["input_tokens"] == spent
    assert analysis["latency_ms"] is not None
    assert "2 detection(s)" in analysis["input_summary"]

    async def evaluations() -> int:
        async with engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM ai_evaluations WHERE event_id = :e"),
                        {"e": event_id},
                    )
                ).scalar_one()
            )

    first = await http.post(f"{AUDIT}/events/{event_id}/evaluate")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["audit_id"] is not None
    assert set(body["quality_scores"]) == {"coherence", "relevance", "consistency"}
    assert all(0 <= v <= 1 for v in body["quality_scores"].values())
    assert abs(sum(body["model_contributions"].values()) - 1) < 0.01
    assert set(body["model_contributions"]) == {d["model"] for d in audit["decisions"]}
    again = (await http.post(f"{AUDIT}/events/{event_id}/evaluate")).json()
    assert again["audit_id"] == body["audit_id"] and await evaluations() == 1
    forced = await http.post(f"{AUDIT}/events/{event_id}/evaluate", params={"force": True})
    assert forced.json()["audit_id"] != body["audit_id"] and await evaluations() == 2
    assert (await http.post(f"{AUDIT}/events/999999/evaluate")).status_code == 404

    # the other event through a batch audit job
    queued = await http.post(f"{AUDIT}/batch", json={"camera_id": batches[1]["camera_id"]})
    assert queued.status_code == 202, queued.text
    assert queued.json()["queued_count"] == 1
    job = await wait_job(http, queued.json()["job_id"], {"completed", "failed"})
    assert job["status"] == "completed" and job["result"]["evaluated"] == 1
    nothing = (await http.post(f"{AUDIT}/batch", json={"event_ids": [event_id, other]})).json()
    assert nothing["queued_count"] == 0  # both evaluated already

    board = (await http.get(f"{AUDIT}/leaderboard", params={"days": 7})).json()
    assert board["total_events"] == 2 and board["period_days"] == 7
    rates = {e["model_name"]: e["contribution_rate"] for e in board["entries"]}
    assert abs(sum(rates.values()) - 1) < 0.01
    stats = (await http.get(f"{AUDIT}/stats", params={"days": 7})).json()
    assert stats["total_events"] == 2 and stats["events_today"] == 2
    # every decision of both events, as their audits list them
    decisions = [
        d
        for e in (event_id, other)
        for d in (await http.get(f"{AUDIT}/events/{e}")).json()["decisions"]
    ]
    assert stats["token_usage"]["total_input"] == sum(d["input_tokens"] or 0 for d in decisions)
    assert stats["quality_scores"]["avg_coherence"] is not None
    assert set(stats["by_model"]) == set(rates)
    garage = (
        await http.get(f"{AUDIT}/stats", params={"days": 7, "camera_id": batches[1]["camera_id"]})
    ).json()
    assert garage["total_events"] == 1
    recs = (await http.get(f"{AUDIT}/recommendations")).json()
    assert recs["total_events_analyzed"] == 2
    assert recs["recommendations"], recs  # the simulated judge always suggests something here
    for r in recs["recommendations"]:
        assert r["priority"] in ("high", "medium", "low") and 1 <= r["affected_events"] <= 2
    assert (await http.get(f"{AUDIT}/leaderboard", params={"days": 91})).status_code == 422
    assert (await http.get(f"{AUDIT}/stats", params={"days": 0})).status_code == 422

    gql = (await admin.data("EventAudit", eventId=event_id))["eventAudit"]
    assert gql["auditId"] == forced.json()["audit_id"] and len(gql["decisions"]) == 5
    reports = await admin.data("AuditReports", days=7)
    assert reports["auditStats"]["totalEvents"] == 2 and reports["modelLeaderboard"]
    by_job = (await http.get(f"{AUDIT}/events/{other}")).json()
    evaluated = (await admin.data("EvaluateEvent", eventId=other))["evaluateEvent"]["audit"]
    # already evaluated by the job: that very evaluation, unchanged
    assert by_job["audit_id"] is not None and evaluated["auditId"] == by_job["audit_id"]
    missing = (await admin.data("EvaluateEvent", eventId=0))["evaluateEvent"]
    assert missing["audit"] is None and missing["errors"][0]["code"] == "NOT_FOUND"
