"""GraphQL can do what REST can (issue 24): log ingest and a live tail, seed 003's metrics, the
AI audit's recommendations, prompt export and every model's history, enrichment by id and by
detection, batch audit by camera and dates, and live workers and circuit breakers. Each is
checked against what the REST door (or the database) says."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import text

from app.config import Settings
from app.services.fleet.breakers import Breakers
from tests.client import GraphQLClient, live
from tests.conftest import make_token, wait_for_status
from tests.factories import insert_batch, insert_detection, insert_events
from tests.processes import start_worker

TENANT = "tenant-parity"


def _line(level: str, message: str, agent: str | None = None) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": level,
        "message": message,
        "agentId": agent,
        "context": {"k": message},
    }


async def test_logs_ingested_in_graphql_are_tailed_live_and_searchable_over_rest(
    admin: GraphQLClient, http: httpx.AsyncClient
) -> None:
    beat = await admin.data(
        "ReportHeartbeat", agentId="tail-agent", input={"name": "tail", "type": "llm"}
    )
    assert beat["reportHeartbeat"]["errors"] == [], beat
    async with live(admin, "LogTail", agentId="tail-agent", level="WARN") as tail:
        stored = await admin.data(
            "IngestLogs",
            entries=[
                _line("INFO", "quiet line", "tail-agent"),
                _line("ERROR", "disk full", "tail-agent"),
                _line("ERROR", "someone else", None),
                _line("WARN", "slow disk", "tail-agent"),
            ],
        )
        assert stored["ingestLogs"] == {"accepted": 4, "errors": []}
        first = (await tail.next(timeout=10))["logTail"]
        second = (await tail.next(timeout=10))["logTail"]
    # only the agent's lines at WARN or above, in the order they were sent
    assert [first["message"], second["message"]] == ["disk full", "slow disk"]
    assert first["level"] == "ERROR" and first["context"] == {"k": "disk full"}
    # the other door reads the same lines
    found = (await http.get("/api/v1/monitoring/logs", params={"agent_id": "tail-agent"})).json()
    assert sorted(line["message"] for line in found["logs"]) == [
        "disk full",
        "quiet line",
        "slow disk",
    ]
    # one bad entry refuses the whole request, naming it; nothing is stored
    bad = await admin.data(
        "IngestLogs", entries=[_line("INFO", "fine"), _line("INFO", "x" * 10_001)]
    )
    (error,) = bad["ingestLogs"]["errors"]
    assert bad["ingestLogs"]["accepted"] == 0 and error["field"] == "logs.1.message", bad
    found = (await http.get("/api/v1/monitoring/logs", params={"search": "fine"})).json()
    assert found["logs"] == []


async def test_a_tenants_log_tail_carries_only_its_lines(
    admin: GraphQLClient, server: str, settings: Settings
) -> None:
    async with GraphQLClient(server, make_token(settings, "tenant_admin", TENANT)) as tenant:
        beat = await tenant.data(
            "ReportHeartbeat", agentId="t-agent", input={"name": "t", "type": "llm"}
        )
        assert beat["reportHeartbeat"]["errors"] == [], beat
        async with live(tenant, "LogTail", reader=admin) as tail:
            # an installation-wide line first, then the tenant's own
            await admin.data("IngestLogs", entries=[_line("ERROR", "installation secret")])
            await tenant.data("IngestLogs", entries=[_line("INFO", "mine", "t-agent")])
            got = (await tail.next(timeout=10))["logTail"]
        assert got["message"] == "mine" and got["agentId"] == "t-agent"


async def test_server_metrics_match_seed_003s_rest_answer(
    admin: GraphQLClient, http: httpx.AsyncClient, worker: Any
) -> None:
    submitted = await admin.data("SubmitTask", input={"taskType": "echo", "input": {"n": 1}})
    assert submitted["submitTask"]["errors"] == []
    await wait_for_status(admin, submitted["submitTask"]["task"]["id"], {"COMPLETED"})
    graph = (await admin.data("ServerMetrics"))["serverMetrics"]
    door = (await http.get("/api/v1/metrics")).json()
    assert graph["totalRequests"] == door["total_requests"] >= 1
    assert graph["llmStatus"] == door["llm_status"]
    for field, key in (
        ("serverStatus", "server_status"),
        ("activeTasks", "active_tasks"),
        ("queueLength", "queue_length"),
        ("successRate", "success_rate"),
        ("apiCosts", "api_costs"),
    ):
        assert graph[field] == door[key], field


async def test_enrichment_by_id_and_by_detection(
    admin: GraphQLClient, http: httpx.AsyncClient, engine: Any
) -> None:
    detection_id = await insert_detection(engine, "/x.jpg")
    async with engine.begin() as conn:
        enrichment_ids = [
            await conn.scalar(
                text(
                    "INSERT INTO enrichments (detection_id, task_id, camera_id, detection_type,"
                    " model_name, description, attributes, created_at) VALUES (:d,"
                    " gen_random_uuid(), 'yard', 'person', 'florence', :text, '{}',"
                    " now() + make_interval(secs => :n)) RETURNING id"
                ),
                {"d": detection_id, "text": f"take {n}", "n": n},
            )
            for n in range(2)
        ]
    one = (await admin.data("Enrichment", id=enrichment_ids[1]))["enrichment"]
    door = (await http.get(f"/api/enrichment/{enrichment_ids[1]}")).json()
    assert one["id"] == door["id"] == enrichment_ids[1]
    assert one["detectionId"] == door["detection_id"] == detection_id
    detection = (await admin.data("Detection", id=detection_id))["detection"]
    by_detection = (await http.get(f"/api/enrichment/detection/{detection_id}")).json()
    assert [e["id"] for e in detection["enrichments"]] == enrichment_ids
    assert sorted(e["id"] for e in by_detection["enrichments"]) == enrichment_ids
    # unknown ids are null, as every lookup by id
    assert (await admin.data("Enrichment", id=2**31 - 1))["enrichment"] is None
    assert (await admin.data("Detection", id=2**31 - 1))["detection"] is None


async def test_prompt_export_and_every_models_history_match_rest(
    admin: GraphQLClient, http: httpx.AsyncClient
) -> None:
    updated = await admin.data("UpdatePrompt", model="nemotron", temperature=0.3)
    assert updated["updatePrompt"]["errors"] == []
    exported = (await admin.data("PromptExport"))["promptExport"]
    door = (await http.get("/api/ai-audit/prompts/export")).json()
    assert exported["prompts"] == door["prompts"] and exported["history"] == door["history"]
    assert exported["prompts"]["nemotron"]["temperature"] == 0.3
    histories = {
        h["model"]: h for h in (await admin.data("PromptHistories", limit=1))["promptHistories"]
    }
    door_history = (await http.get("/api/ai-audit/prompts/history", params={"limit": 1})).json()
    assert set(histories) == set(door_history["history"]) and "nemotron" in histories
    nemotron = histories["nemotron"]
    assert nemotron["total"] == 2 and len(nemotron["versions"]) == 1
    assert nemotron["versions"][0]["version"] == door_history["history"]["nemotron"][0]["version"]
    assert nemotron["versions"][0]["temperature"] == 0.3
    refused = await admin.execute("PromptHistories", limit=0)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_recommendations_match_rest(
    admin: GraphQLClient, http: httpx.AsyncClient, engine: Any
) -> None:
    events = await insert_events(engine, 3)
    suggestions = [
        {"model": "nemotron", "category": "clarity", "suggestion": "name the camera"},
    ]
    async with engine.begin() as conn:
        for n, event_id in enumerate(events):
            await conn.execute(
                text(
                    "INSERT INTO ai_evaluations (event_id, camera_id, judge_model,"
                    " quality_scores, model_contributions, prompt_suggestions, input_tokens,"
                    " output_tokens, created_at)"
                    " VALUES (:e, 'yard', 'judge', :q, :c, :s, 0, 0, now())"
                ),
                {
                    "e": event_id,
                    "q": json.dumps({"coherence": 4, "relevance": 4, "consistency": 4}),
                    "c": json.dumps({"nemotron": 1.0}),
                    "s": json.dumps(suggestions if n < 2 else []),
                },
            )
    graph = (await admin.data("AuditRecommendations", days=7))["auditRecommendations"]
    door = (await http.get("/api/ai-audit/recommendations", params={"days": 7})).json()
    assert graph["totalEventsAnalyzed"] == door["total_events_analyzed"] == 3
    (rec,) = graph["recommendations"]
    (door_rec,) = door["recommendations"]
    assert rec["suggestion"] == door_rec["suggestion"] == "name the camera"
    assert rec["affectedEvents"] == door_rec["affected_events"] == 2
    assert rec["priority"] == door_rec["priority"]
    refused = await admin.execute("AuditRecommendations", days=0)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_batch_audit_selects_by_camera_and_dates(
    admin: GraphQLClient, http: httpx.AsyncClient, engine: Any
) -> None:
    yard = await insert_events(engine, 4)  # camera `yard`, created now
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE security_events SET camera_id = 'gate' WHERE id = :id"), {"id": yard[0]}
        )
        await conn.execute(
            text(
                "UPDATE security_events SET created_at = now() - interval '3 days' WHERE id = :id"
            ),
            {"id": yard[1]},
        )
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    queued = (await admin.data("BatchAudit", cameraId="yard", startDate=since))["batchAudit"]
    assert queued["errors"] == [] and queued["queuedCount"] == 2, queued
    job = (await http.get(f"/api/jobs/{queued['jobId']}")).json()
    assert job["job_type"] == "ai_processing"
    # nothing left to judge in an empty window: no job
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = (await admin.data("BatchAudit", cameraId="yard", startDate=later))["batchAudit"]
    assert empty == {"queuedCount": 0, "jobId": None, "errors": []}
    too_many = (await admin.data("BatchAudit", eventIds=list(range(1, 10_002))))["batchAudit"]
    assert too_many["jobId"] is None and too_many["errors"][0]["field"] == "event_ids"


async def test_workers_changed_follows_a_worker_in_and_out(
    admin: GraphQLClient, env: dict[str, str], logs: Any
) -> None:
    name = f"worker-parity-{uuid.uuid4().hex[:6]}"

    async def first_snapshot_with(sub: Any, present: bool) -> dict[str, Any]:
        """Read the pushed snapshots until one has the worker in it (or not)."""
        for _ in range(60):
            snapshot = (await sub.next(timeout=15))["workersChanged"]
            if (name in [w["name"] for w in snapshot["workers"]]) == present:
                return snapshot
        raise AssertionError(f"{name} never {'joined' if present else 'left'}")

    async with admin.subscribe("WorkersChanged") as sub:
        first = (await sub.next(timeout=10))["workersChanged"]
        assert name not in [w["name"] for w in first["workers"]]
        proc = await asyncio.to_thread(start_worker, env, logs, name=name, queues="parity")
        try:
            joined = await first_snapshot_with(sub, True)
            assert joined["totalWorkers"] == len(joined["workers"])
        finally:
            await asyncio.to_thread(proc.stop)
        await first_snapshot_with(sub, False)


async def test_circuit_breaker_changes_are_pushed(
    admin: GraphQLClient, redis_client: Any, settings: Settings
) -> None:
    breakers = Breakers(redis_client, settings.breakers)
    async with live(admin, "CircuitBreakerChanged", name="yolo26") as sub:
        for _ in range(settings.circuit_breaker_failure_threshold):
            generation = await breakers.allow("yolo26")
            await breakers.record("yolo26", ok=False, generation=generation, error="down")
        opened = (await sub.next(timeout=10))["circuitBreakerChanged"]
        assert opened["state"] == "open" and opened["previousState"] == "closed"
        assert opened["reset"] is False and opened["breaker"]["lastError"] == "down"
        reset = (await admin.data("ResetCircuitBreaker", name="yolo26"))["resetCircuitBreaker"]
        assert reset["errors"] == []
        closed = (await sub.next(timeout=10))["circuitBreakerChanged"]
        assert closed["state"] == "closed" and closed["previousState"] == "open"
        assert closed["reset"] is True


async def test_a_detections_frame_comes_as_a_bounded_thumbnail(
    admin: GraphQLClient, engine: Any, settings: Settings, tmp_path: Any
) -> None:
    folder = settings.cameras_folder / "yard"
    folder.mkdir(parents=True, exist_ok=True)
    frame = folder / f"thumb-{uuid.uuid4().hex[:6]}.jpg"
    Image.new("RGB", (640, 480), (200, 40, 40)).save(frame, format="JPEG")
    outside = tmp_path / "elsewhere.jpg"
    Image.new("RGB", (64, 48)).save(outside, format="JPEG")
    ids = [await insert_detection(engine, str(p)) for p in (frame, outside, folder / "gone.jpg")]
    shown = (await admin.data("Detection", id=ids[0], size=48))["detection"]["thumbnail"]
    assert shown.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(shown.split(",", 1)[1]))) as im:
        assert im.size == (48, 36)  # the longest side is the size asked for, aspect kept
    # a file outside the camera folders, or gone, is never read: null
    for other in ids[1:]:
        assert (await admin.data("Detection", id=other))["detection"]["thumbnail"] is None


async def test_cameras_are_summarised_from_what_they_sent(
    admin: GraphQLClient, engine: Any
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO camera_images (file_hash, camera_id, file_path, task_id, seen_at)"
                " SELECT 'h' || g, CASE WHEN g <= 3 THEN 'gate' ELSE 'yard' END, '/f' || g,"
                " gen_random_uuid(), now() - g * interval '1 minute'"
                " FROM generate_series(1, 5) g"
            )
        )
    await insert_batch(engine, "b-open", camera="gate", closes_in_seconds=30)
    body = await admin.raw(
        "{ cameras { cameraId images lastImageAt aggregatingBatches }"
        " activeBatches { batchId dueAt } }"
    )
    data = body.json()["data"]
    cams = {c["cameraId"]: c for c in data["cameras"]}
    assert (cams["gate"]["images"], cams["yard"]["images"]) == (3, 2)
    assert (cams["gate"]["aggregatingBatches"], cams["yard"]["aggregatingBatches"]) == (1, 0)
    assert datetime.fromisoformat(cams["gate"]["lastImageAt"]) > datetime.fromisoformat(
        cams["yard"]["lastImageAt"]
    )
    (batch,) = data["activeBatches"]
    assert batch["batchId"] == "b-open" and datetime.fromisoformat(batch["dueAt"]) > datetime.now(
        UTC
    )


async def test_an_events_detections_can_be_limited(admin: GraphQLClient, engine: Any) -> None:
    # the console asks for four frames per event, however many the batch holds
    for n in range(3):
        await insert_detection(engine, f"/frames/{n}.jpg", batch_id="b-many")
    async with engine.begin() as conn:
        event_id = await conn.scalar(
            text(
                "INSERT INTO security_events (batch_id, camera_id, analysis_task_id, risk_score,"
                " risk_level, summary, reasoning, detection_count, input_tokens, output_tokens,"
                " started_at, ended_at, created_at) VALUES ('b-many', 'yard', gen_random_uuid(),"
                " 10, 'low', 's', 'r', 3, 0, 0, now(), now(), now()) RETURNING id"
            )
        )
    query = "query($id: Int!, $n: Int) { securityEvent(id: $id) { detections(first: $n) { id } } }"
    counts = []
    for n in (None, 2, 0):
        body = (await admin.raw(query, {"id": event_id, "n": n})).json()
        counts.append(len(body["data"]["securityEvent"]["detections"]))
    assert counts == [3, 2, 0]
