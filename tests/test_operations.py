"""Every client operation in graphql/operations/ is sent by a test (a defined operation no
test sends fails `test_every_operation_is_sent_by_a_test`); here, those no domain test sent,
each checked against what the other door (REST, or the database) says."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from app.config import Settings
from app.services.fleet.breakers import Breakers
from tests.client import OPERATIONS, GraphQLClient
from tests.factories import insert_alert
from tests.processes import Proc
from tests.test_pipeline import WAIT, analysed_batches, drop, jpeg
from tests.waiting import wait_for

TESTS = Path(__file__).resolve().parent


def test_every_operation_is_sent_by_a_test() -> None:
    defined = set()
    for path in OPERATIONS.glob("*.graphql"):
        defined |= set(
            re.findall(r"^(?:query|mutation|subscription) (\w+)", path.read_text(), re.M)
        )
    sources = "\n".join(p.read_text() for p in TESTS.glob("test_*.py"))
    unsent = sorted(op for op in defined if f'"{op}"' not in sources)
    assert unsent == [], f"operations no test sends: {unsent}"


async def test_alerts_listed_acknowledged_and_resolved(admin: GraphQLClient, engine: Any) -> None:
    alert_id = await insert_alert(engine, agent="ops-agent")
    listed = (await admin.data("Alerts", first=10))["alerts"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["id"] == alert_id
    acked = (await admin.data("AckAlert", id=alert_id, notes="looking"))["ackAlert"]
    assert acked["errors"] == [] and acked["alert"]["status"] == "ACKNOWLEDGED"
    assert acked["alert"]["acknowledgeNotes"] == "looking"
    resolved = (
        await admin.data("ResolveAlert", id=alert_id, resolution="fixed", rootCause="disk")
    )["resolveAlert"]
    assert resolved["errors"] == [] and resolved["alert"]["status"] == "RESOLVED"
    assert resolved["alert"]["rootCause"] == "disk" and resolved["alert"]["resolvedBy"] == "test"
    again = (await admin.data("ResolveAlert", id=alert_id))["resolveAlert"]
    assert again["alert"] is None and again["errors"][0]["code"] == "alert_already_resolved"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, acknowledged_by FROM alerts WHERE id = :id"), {"id": alert_id}
            )
        ).one()
    assert tuple(row) == ("resolved", "test")


async def test_llm_tasks_listed_and_all_cancelled(admin: GraphQLClient) -> None:
    ids = []
    for i in range(3):
        payload = (
            await admin.data(
                "SubmitTask",
                input={"taskType": "llm", "queue": "parked", "input": {"prompt": f"p{i}"}},
            )
        )["submitTask"]
        ids.append(payload["task"]["id"])
    listed = {t["id"] for t in (await admin.data("LlmTasks", first=100))["llmTasks"]}
    assert set(ids) <= listed
    cancelled = (await admin.data("CancelAllLlmTasks"))["cancelAllLlmTasks"]
    assert cancelled["cancelled"] == 3
    for task_id in ids:
        assert (await admin.data("Task", id=task_id))["task"]["status"] == "CANCELLED"
    assert (await admin.data("LlmTasks", first=100))["llmTasks"] == []


async def test_job_types_and_stats_and_worker_stats(
    admin: GraphQLClient, engine: Any, worker: Proc
) -> None:
    data = await admin.data("JobTypesAndStats")
    kinds = {t["type"]: t["supportsAbort"] for t in data["jobTypes"]}
    assert kinds == {"export": True, "ai_processing": True, "cleanup": False}
    async with engine.connect() as conn:
        jobs = await conn.scalar(
            text(
                "SELECT count(*) FROM tasks"
                " WHERE task_type IN ('export', 'ai_processing', 'cleanup')"
            )
        )
    assert data["jobStats"]["totalJobs"] == jobs
    workers = (await admin.data("WorkerStats"))["workerStats"]
    assert "worker-main" in {w["name"] for w in workers["workers"]}
    assert workers["totalWorkers"] == len(workers["workers"])


async def test_breakers_listed_and_reset_and_system_health(
    admin: GraphQLClient, redis_client: Any, settings: Settings
) -> None:
    breakers = Breakers(redis_client, settings.breakers)
    for _ in range(settings.circuit_breaker_failure_threshold):
        generation = await breakers.allow("yolo26")
        await breakers.record("yolo26", ok=False, generation=generation, error="down")
    listed = {b["name"]: b for b in (await admin.data("CircuitBreakers"))["circuitBreakers"]}
    assert listed["yolo26"]["state"] == "open" and listed["yolo26"]["lastError"] == "down"
    health = (await admin.data("SystemHealth"))["systemHealth"]
    models = {m["name"]: m["status"] for m in health["models"]}
    assert models["yolo26"] == "unhealthy" and health["status"] == "degraded"
    reset = (await admin.data("ResetCircuitBreaker", name="yolo26"))["resetCircuitBreaker"]
    assert reset["errors"] == [] and reset["circuitBreaker"]["state"] == "closed"
    listed = {b["name"]: b for b in (await admin.data("CircuitBreakers"))["circuitBreakers"]}
    assert listed["yolo26"]["state"] == "closed"
    unknown = (await admin.data("ResetCircuitBreaker", name="nope"))["resetCircuitBreaker"]
    assert unknown["errors"][0]["code"] == "NOT_FOUND"


async def test_dlq_changes_live_and_clears(admin: GraphQLClient, worker: Proc) -> None:
    async with admin.subscribe("OnDlqChanged") as changes:
        first = (await changes.next())["dlqChanged"]
        before = first["totalCount"]
        payload = (
            await admin.data(
                "SubmitTask",
                input={
                    "taskType": "echo",
                    "queue": "llm",
                    "maxRetries": 0,
                    "config": {"simulate": {"fail_attempts": 1, "error": "fatal"}},
                },
            )
        )["submitTask"]
        assert payload["errors"] == []
        while True:  # the dead letter arrives live
            now = (await changes.next(timeout=20))["dlqChanged"]
            counts = {q["queue"]: q["count"] for q in now["queues"]}
            if now["totalCount"] == before + 1:
                break
    assert counts["llm"] >= 1
    cleared = (await admin.data("ClearDlq", queue="dlq:llm"))["clearDlq"]
    assert cleared["errors"] == [] and cleared["clearedCount"] == counts["llm"]
    jobs = (await admin.data("DlqJobs", queue="dlq:llm"))["dlqJobs"]
    assert jobs == []


async def test_batches_live_active_enrichments_and_reprocessing(
    admin: GraphQLClient,
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
) -> None:
    pipeline_worker()
    async with admin.subscribe("OnBatchUpdated", cameraId="porch") as updates:
        drop(cameras, "porch", "one.jpg", jpeg(901))
        opened = (await updates.next(timeout=30))["batchUpdated"]
        assert opened["cameraId"] == "porch"

        async def active() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await admin.data("ActiveBatches", cameraId="porch"))[
                "activeBatches"
            ]
            return found

        (batch,) = await wait_for(active, timeout=WAIT, what="the porch batch open")
        assert batch["batchId"] == opened["batchId"]
        while opened["eventId"] is None:  # the batch closes and is analysed, live
            opened = (await updates.next(timeout=30))["batchUpdated"]
    (done,) = await analysed_batches(http, 1)
    enrichments = (await admin.data("Enrichments", first=10))["enrichments"]
    rest = (await http.get("/api/enrichment")).json()
    assert enrichments["totalCount"] == rest["total"] == done["detection_count"]
    detection_id = enrichments["edges"][0]["node"]["detectionId"]
    again = (await admin.data("ReprocessEnrichment", detectionId=detection_id))[
        "reprocessEnrichment"
    ]
    assert again["errors"] == [] and again["detectionId"] == detection_id
    missing = (await admin.data("ReprocessEnrichment", detectionId=10**9))["reprocessEnrichment"]
    assert missing["errors"][0]["code"] == "NOT_FOUND"
