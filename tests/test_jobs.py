"""Seed 002's background jobs: exports stream to a file with progress and can be aborted
mid-way (nothing left behind), cleanup applies retention, search facets match SQL, and cancel,
abort, DELETE and bulk cancel follow the job's state. Real API and worker processes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.client import GraphQLClient
from tests.waiting import wait_for

JOBS = "/api/jobs"

EVENTS = """
INSERT INTO security_events (batch_id, camera_id, analysis_task_id, risk_score, risk_level,
  summary, reasoning, detection_count, model_name, input_tokens, output_tokens, latency_ms,
  started_at, ended_at, created_at)
SELECT 'batch-' || i, 'cam-' || (i % 7), gen_random_uuid(), i % 101,
  (ARRAY['low','medium','high','critical'])[1 + i % 4], 'summary, "quoted" ' || i,
  'reasoning', i % 9, 'nemotron', i % 500, i % 200, (i % 1000) / 10.0,
  now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval,
  now() - (i || ' seconds')::interval
FROM generate_series(1, :n) AS i
"""

# a job as a row of the lifecycle (`created` seconds ago, `ran` seconds long)
JOB_ROW = """
INSERT INTO tasks (id, task_type, operation, status, queue, priority, origin_instance,
  origin_tenant_id, input, config, metadata, errors, attempts, max_attempts, retry_count,
  dead_lettered, is_resumed, resume_attempt_count, progress, progress_history, input_tokens,
  output_tokens, cost_usd, created_at, updated_at, started_at, completed_at, media,
  service_requests)
VALUES (:id, :type, :op, :status, :queue, 50, 'jobs', :tenant, '{}', '{}',
  CAST(:meta AS jsonb), CAST(:errors AS jsonb), 1, 1, 0, false, false, 0, 0, '[]', 0, 0, 0,
  now() - make_interval(secs => CAST(:created AS float8)), now(),
  now() - make_interval(secs => CAST(:started AS float8)),
  now() - make_interval(secs => CAST(:completed AS float8)),
  '{}', '[]')
"""


async def insert_job(
    engine: Any,
    *,
    type: str = "export",
    status: str = "QUEUED",
    queue: str = "default",
    created: float = 60,
    ran: float = 5,
    meta: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    tenant: str | None = None,
) -> str:
    job_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(JOB_ROW),
            {
                "id": job_id,
                "type": type,
                "op": "security_events" if type == "export" else "retention",
                "status": status,
                "queue": queue,
                "tenant": tenant,
                "meta": json.dumps(meta or {}),
                "errors": json.dumps(errors or []),
                "created": created,
                "started": None if status == "QUEUED" else created,
                "completed": created - ran
                if status in ("COMPLETED", "FAILED", "CANCELLED")
                else None,
            },
        )
    return job_id


async def wait_job(client: httpx.AsyncClient, job_id: str, statuses: set[str]) -> Any:
    async def probe() -> Any:
        job = (await client.get(f"{JOBS}/{job_id}")).json()
        return job if job["status"] in statuses else None

    return await wait_for(probe, what=f"job {job_id} to reach {statuses}", timeout=60)


async def test_an_export_streams_ten_thousand_events_and_an_abort_leaves_nothing(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    engine: Any,
    settings: Any,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(EVENTS), {"n": 10_000})
    rest = client_for().http
    started = await rest.post(
        JOBS, json={"job_type": "export", "params": {"target": "security_events"}}
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert started.json()["status"] in ("pending", "running")

    async with admin.subscribe("JobProgress", id=job_id) as feed:
        seen = []
        while True:
            job = (await feed.next(timeout=60))["jobProgress"]
            seen.append(job["progress"])
            if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                break
    assert job["status"] == "COMPLETED", job
    assert seen == sorted(seen) and seen[-1] == 100

    detail = (await rest.get(f"{JOBS}/{job_id}/detail")).json()
    history = [p["progress"] for p in detail["progress_history"]]
    assert len(history) >= 20 and history == sorted(history) and history[-1] == 100
    assert detail["timing"]["queue_wait_seconds"] >= 0
    assert detail["timing"]["running_seconds"] > 0
    assert detail["retry_info"]["attempt"] == 1
    assert detail["result"]["rows"] == 10_000

    download = await rest.get(f"{JOBS}/{job_id}/download")
    assert download.status_code == 200, download.text
    rows = list(csv.DictReader(io.StringIO(download.text)))
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text(
                    "SELECT id, batch_id, summary, risk_score FROM security_events"
                    " ORDER BY created_at, id"
                )
            )
        ).all()
    assert [(int(r["id"]), r["batch_id"], r["summary"], int(r["risk_score"])) for r in rows] == [
        (i, b, s, score) for i, b, s, score in stored
    ]
    logs = (await rest.get(f"{JOBS}/{job_id}/logs", params={"level": "INFO"})).json()
    assert logs["count"] >= 3 and logs["logs"][0]["message"].startswith("starting")

    # a second export, slowed down, aborted mid-way
    slow = await rest.post(
        JOBS,
        json={
            "job_type": "export",
            "params": {"target": "security_events", "format": "json", "pause_ms": 200},
        },
    )
    second = slow.json()["job_id"]

    async def midway() -> Any:
        job = (await rest.get(f"{JOBS}/{second}")).json()
        return job if job["status"] == "running" and job["progress"] >= 5 else None

    await wait_for(midway, what="the second export under way", timeout=30)
    exports = Path(settings.data_dir) / "exports"
    assert any(str(second) in p.name for p in exports.iterdir())  # its attempt's partial file
    aborted_at = asyncio.get_running_loop().time()
    abort = await rest.post(f"{JOBS}/{second}/abort")
    assert abort.status_code == 200 and abort.json()["status"] == "aborted"
    done = await wait_job(rest, second, {"cancelled", "completed", "failed"})
    assert done["status"] == "cancelled"
    assert asyncio.get_running_loop().time() - aborted_at < 2.5
    assert done["progress"] < 100
    assert not [p for p in exports.iterdir() if str(second) in p.name]
    assert (await rest.get(f"{JOBS}/{second}/download")).status_code == 409
    history = (await rest.get(f"{JOBS}/{second}/history")).json()
    assert [t["to_status"] for t in history["transitions"]] == ["pending", "running", "cancelled"]
    assert history["attempts"][0]["status"] == "cancelled"


async def test_search_facets_equal_counts_computed_in_sql(
    reconciler_held: None,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    engine: Any,
) -> None:
    rng = random.Random(2026)
    for i in range(120):
        status = rng.choice(["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"])
        await insert_job(
            engine,
            type=rng.choice(["export", "cleanup"]),
            status=status,
            queue=rng.choice(["default", "bulk"]),
            created=rng.uniform(10, 7200),
            ran=rng.uniform(0.5, 120),
            meta={"format": rng.choice(["csv", "json"]), "note": f"n{i}"},
            errors=["disk full"] if status == "FAILED" and rng.random() < 0.7 else [],
        )
    # a task that is not a job stays out of every job figure
    await insert_job(engine, type="llm", status="COMPLETED")
    rest = client_for().http

    async def sql(where: str) -> dict[str, dict[str, int]]:
        words = {
            "QUEUED": "pending",
            "RUNNING": "running",
            "COMPLETED": "completed",
            "FAILED": "failed",
            "CANCELLED": "cancelled",
        }
        async with engine.connect() as conn:
            base = "FROM tasks WHERE task_type IN ('export', 'cleanup')"
            by_status = (
                await conn.execute(
                    text(f"SELECT status, count(*) {base} AND {where[0]} GROUP BY 1")
                )
            ).all()
            by_type = (
                await conn.execute(
                    text(f"SELECT task_type, count(*) {base} AND {where[1]} GROUP BY 1")
                )
            ).all()
            total = (await conn.execute(text(f"SELECT count(*) {base} AND {where[2]}"))).scalar()
        return {
            "by_status": {words[s]: n for s, n in by_status},
            "by_type": dict(by_type),
            "count": {"": int(total or 0)},
        }

    cases = [
        ({}, ("true", "true", "true")),
        (
            {"status": "running,pending"},
            ("true", "status IN ('RUNNING','QUEUED')", "status IN ('RUNNING','QUEUED')"),
        ),
        (
            {"job_type": "export", "queue": "bulk"},
            (
                "task_type = 'export' AND queue = 'bulk'",
                "queue = 'bulk'",
                "task_type = 'export' AND queue = 'bulk'",
            ),
        ),
        (
            {"has_error": "true"},
            ("errors <> '[]'", "errors <> '[]'", "errors <> '[]'"),
        ),
        (
            {"min_duration": "30", "status": "completed,failed"},
            (
                "extract(epoch FROM completed_at - started_at) >= 30",
                "extract(epoch FROM completed_at - started_at) >= 30"
                " AND status IN ('COMPLETED','FAILED')",
                "extract(epoch FROM completed_at - started_at) >= 30"
                " AND status IN ('COMPLETED','FAILED')",
            ),
        ),
        (
            {"q": "json"},
            ("metadata::text ILIKE '%json%'",) * 3,
        ),
    ]
    for params, where in cases:
        r = await rest.get(f"{JOBS}/search", params={**params, "limit": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        expected = await sql(where)  # type: ignore[arg-type]
        assert body["aggregations"]["by_status"] == expected["by_status"], params
        assert body["aggregations"]["by_type"] == expected["by_type"], params
        assert body["count"] == expected["count"][""], params
        assert len(body["jobs"]) == min(5, body["count"])

    ordered = (
        await rest.get(
            f"{JOBS}/search", params={"sort": "duration", "order": "asc", "status": "completed"}
        )
    ).json()
    durations = [
        (datetime.fromisoformat(j["completed_at"]) - datetime.fromisoformat(j["started_at"]))
        for j in ordered["jobs"]
    ]
    assert durations == sorted(durations)
    assert (await rest.get(f"{JOBS}/search", params={"status": "done"})).status_code == 422
    assert (await rest.get(f"{JOBS}", params={"limit": 1001})).status_code == 422

    stats = (await rest.get(f"{JOBS}/stats")).json()
    everything = await sql(("true", "true", "true"))
    assert stats["total_jobs"] == everything["count"][""] == 120
    assert {k: v for k, v in stats["by_status"].items() if v} == everything["by_status"]
    # today: since UTC midnight; this hour: the last 60 minutes (so past midnight it may hold
    # more than today)
    day = "created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    hour = "created_at >= now() - interval '1 hour'"
    assert stats["jobs_today"] == (await sql((day,) * 3))["count"][""]  # type: ignore[arg-type]
    assert stats["jobs_this_hour"] == (await sql((hour,) * 3))["count"][""]  # type: ignore[arg-type]
    assert stats["avg_duration_seconds"] > 0

    listed = (await rest.get(JOBS, params={"job_type": "cleanup", "status": "failed"})).json()
    failed_cleanups = await sql(("true", "true", "task_type = 'cleanup' AND status = 'FAILED'"))
    assert listed["count"] == min(50, failed_cleanups["count"][""]) > 0
    assert all(j["job_type"] == "cleanup" and j["status"] == "failed" for j in listed["jobs"])

    facets = await admin.data("JobFacets", filter={"statuses": ["RUNNING", "PENDING"]})
    by_status = {c["key"]: c["count"] for c in facets["jobFacets"]["byStatus"]}
    assert by_status == everything["by_status"]
    page = (await admin.data("Jobs", first=7, filter={"jobTypes": ["export"]}))["jobs"]
    assert page["totalCount"] == everything["by_type"]["export"]
    assert len(page["edges"]) == 7 and all(e["node"]["jobType"] == "export" for e in page["edges"])


async def test_cancel_abort_delete_and_bulk_follow_the_jobs_state(
    reconciler_held: None,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    engine: Any,
) -> None:
    rest = client_for().http
    queued = await insert_job(engine, status="QUEUED")
    done = await insert_job(engine, status="COMPLETED")
    cleaning = await insert_job(engine, type="cleanup", status="RUNNING")
    running_export = await insert_job(engine, status="RUNNING")
    not_a_job = await insert_job(engine, type="llm", status="QUEUED")

    cancelled = await rest.post(f"{JOBS}/{queued}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {
        "job_id": queued,
        "status": "cancelled",
        "message": "Job cancelled successfully",
    }
    again = await rest.post(f"{JOBS}/{queued}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
    finished = await rest.post(f"{JOBS}/{done}/cancel")
    assert finished.status_code == 409 and finished.json()["detail"] == "Job already completed"
    not_abortable = await rest.post(f"{JOBS}/{cleaning}/abort")
    assert not_abortable.status_code == 409
    assert not_abortable.json()["detail"] == "cleanup jobs cannot be aborted"
    running = await rest.post(f"{JOBS}/{cleaning}/cancel")
    assert running.status_code == 409
    assert (
        running.json()["detail"] == f"job {cleaning} is running and cleanup jobs cannot be aborted"
    )
    not_running = await rest.post(f"{JOBS}/{done}/abort")
    assert not_running.status_code == 409
    assert not_running.json()["detail"] == f"job {done} is completed, not running"
    assert (await rest.get(f"{JOBS}/{not_a_job}")).status_code == 404
    assert (await rest.post(f"{JOBS}/{uuid.uuid4()}/cancel")).status_code == 404

    pending = await insert_job(engine, status="QUEUED")
    deleted = await rest.delete(f"{JOBS}/{pending}")
    assert deleted.status_code == 200
    assert deleted.json() == {
        "job_id": pending,
        "action": "cancelled",
        "previous_status": "pending",
        "message": "Job cancelled",
    }
    aborted = (await rest.delete(f"{JOBS}/{running_export}")).json()
    assert aborted["action"] == "aborted" and aborted["previous_status"] == "running"

    a, b = await insert_job(engine), await insert_job(engine)
    bulk = await rest.post(f"{JOBS}/bulk-cancel", json={"job_ids": [a, b, done, "nope"]})
    assert bulk.status_code == 200
    body = bulk.json()
    assert body["successful"] == 2 and body["failed"] == 2
    assert [r["success"] for r in body["results"]] == [True, True, False, False]
    assert body["results"][2]["error"] == "Job already completed"

    gql = (await admin.data("CancelJob", id=await insert_job(engine)))["cancelJob"]
    assert gql["job"]["status"] == "CANCELLED" and not gql["errors"]
    refused = (await admin.data("AbortJob", id=done))["abortJob"]
    assert refused["errors"][0]["code"] == "job_conflict"
    many = await admin.data("BulkCancelJobs", ids=[await insert_job(engine), done])
    assert many["bulkCancelJobs"]["successful"] == 1

    types = (await rest.get(f"{JOBS}/types")).json()["types"]
    assert {t["type"]: t["supports_abort"] for t in types} == {
        "export": True,
        "cleanup": False,
        "ai_processing": True,
    }
    bad = await rest.post(JOBS, json={"job_type": "export", "params": {"target": "secrets"}})
    assert bad.status_code == 422
    tenant = client_for("tenant_admin", "alice").http
    refused_cleanup = await tenant.post(JOBS, json={"job_type": "cleanup", "params": {}})
    assert refused_cleanup.status_code == 403
    bobs = await insert_job(engine, status="COMPLETED", tenant="bob")
    alices = await insert_job(engine, status="COMPLETED", tenant="alice")
    assert (await tenant.get(f"{JOBS}/{bobs}")).status_code == 404  # another tenant's
    assert (await tenant.get(f"{JOBS}/{done}")).status_code == 404  # the installation's
    mine = await tenant.get(f"{JOBS}/{alices}")
    assert mine.status_code == 200 and mine.json()["job_id"] == alices
    listed = [j["job_id"] for j in (await tenant.get(JOBS)).json()["jobs"]]
    assert listed == [alices]


async def test_cleanup_applies_retention(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    engine: Any,
) -> None:
    old = [
        await insert_job(engine, type="export", status="COMPLETED", created=5 * 86400)
        for _ in range(3)
    ]
    recent = await insert_job(engine, type="export", status="COMPLETED", created=60)
    async with engine.begin() as conn:
        for days in (3, 0):
            at = datetime.now(UTC) - timedelta(days=days)
            await conn.execute(
                text(
                    "INSERT INTO agent_logs (at, level, level_no, message, context, received_at)"
                    " VALUES (:at, 'info', 20, 'line', '{}', now())"
                ),
                {"at": at},
            )
            await conn.execute(
                text(
                    "INSERT INTO agent_samples (agent_id, at, requests, errors, errors_by_type,"
                    " latencies_ms, input_tokens, output_tokens, tokens_by_model)"
                    " VALUES ('a', :at, 1, 0, '{}', '{}', 0, 0, '{}')"
                ),
                {"at": at},
            )
    started = await admin.data("StartJob", type="cleanup", params={"older_than_days": 2})
    job = started["startJob"]["job"]
    assert job["jobType"] == "cleanup" and not started["startJob"]["errors"]
    rest = client_for().http
    finished = await wait_job(rest, job["id"], {"completed", "failed"})
    assert finished["status"] == "completed", finished
    assert finished["result"]["tasks"] == 3
    assert finished["result"]["agent_logs"] == 1 and finished["result"]["metric_samples"] == 1
    for job_id in old:
        assert (await rest.get(f"{JOBS}/{job_id}")).status_code == 404
    assert (await rest.get(f"{JOBS}/{recent}")).status_code == 200
    one = (await admin.data("Job", id=job["id"]))["job"]
    assert [t["toStatus"] for t in one["transitions"]] == ["PENDING", "RUNNING", "COMPLETED"]
    assert one["progressHistory"] and one["logs"]


@pytest.fixture(autouse=True)
def _exports_dir(settings: Any) -> None:
    (Path(settings.data_dir) / "exports").mkdir(parents=True, exist_ok=True)
