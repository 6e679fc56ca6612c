"""The camera AI pipeline end to end: real folders watched by a real worker, detections,
batches, enrichments, analyses and security events, the DLQ and the circuit breakers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import event, text
from starlette.responses import JSONResponse, Response

from app.auth import api_keys
from app.auth.principals import Principal
from app.config import Settings
from app.db.base import make_sessionmaker
from app.db.models import Detection
from app.edge.state import open_state
from app.gql.context import Context
from app.gql.schema import build_schema
from app.services.fleet.breakers import BreakerConfig, Breakers, CircuitOpen
from app.services.pipeline import batches, queries
from tests.client import GraphQLClient, operations
from tests.processes import Proc
from tests.receiver import Received, Receiver, chat_reply
from tests.waiting import wait_for

WAIT = 30.0  # seconds a wait may take; what it waits for takes ~5 s (a mutant waits it out)


def jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small, distinct picture per seed."""
    im = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    for x in range(0, size[0], 8):
        im.putpixel((x, (seed + x) % size[1]), (255, 255, 255))
    out = io.BytesIO()
    im.save(out, format="JPEG")
    return out.getvalue()


def drop(root: Path, camera: str, name: str, data: bytes) -> Path:
    folder = root / camera
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


async def analysed_batches(http: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    async def done() -> list[dict[str, Any]]:
        body = (await http.get("/api/batches", params={"status": "completed"})).json()
        found = [b for b in body["batches"] if b["event_id"] is not None]
        return found if len(found) >= n else []

    found: list[dict[str, Any]] = await wait_for(done, timeout=WAIT, what=f"{n} analysed batch(es)")
    return found


async def all_analysed(http: httpx.AsyncClient, detections: int) -> None:
    """Wait until every batch is analysed and they hold `detections` detections in all."""

    async def done() -> bool:
        body = (await http.get("/api/batches")).json()
        analysed = [b for b in body["batches"] if b["event_id"] is not None]
        total = sum(b["detection_count"] for b in analysed)
        return total == detections and len(analysed) == body["total"]

    await wait_for(done, timeout=WAIT, what=f"{detections} detections analysed")


async def test_images_become_security_events_seen_live(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    settings: Settings,
) -> None:
    pipeline_worker()
    async with admin.subscribe("OnSecurityEvents") as live:
        for i in range(6):
            drop(cameras, "front_door", f"img_{i:03}.jpg", jpeg(i))
            drop(cameras, "garage", f"img_{i:03}.jpg", jpeg(100 + i))
        received = [(await live.next(timeout=WAIT))["securityEvents"] for _ in range(2)]
    assert sorted(e["cameraId"] for e in received) == ["front_door", "garage"]
    for e in received:
        assert 0 <= e["riskScore"] <= 100 and e["detectionCount"] == 6
        assert e["riskLevel"] in ("low", "medium", "high", "critical") and e["summary"]

    batches = await analysed_batches(http, 2)
    assert all(b["trigger"] == "idle_timeout" and b["detection_count"] == 6 for b in batches)
    assert {b["event_id"] for b in batches} == {e["id"] for e in received}
    enrichments = (await http.get("/api/enrichment", params={"limit": 100})).json()
    assert enrichments["count"] == 12 and enrichments["total"] == 12

    # GraphQL and REST tell the same story: each event with its batch, six detections and
    # each detection's enrichment
    for b in batches:
        by_event = (await http.get(f"/api/enrichment/event/{b['event_id']}")).json()
        assert by_event["count"] == 6
        detail = (await admin.data("SecurityEventDetail", id=b["event_id"]))["securityEvent"]
        assert detail["batch"]["batchId"] == b["batch_id"]
        assert detail["cameraId"] == b["camera_id"]
        assert len(detail["detections"]) == 6
        graph_enrichments = {e["id"] for d in detail["detections"] for e in d["enrichments"]}
        assert graph_enrichments == {e["id"] for e in by_event["enrichments"]}
        assert all(e["description"] for d in detail["detections"] for e in d["enrichments"])
    graph_batches = (await admin.data("Batches", filter={"status": "COMPLETED"}))["batches"]
    assert {e["node"]["batchId"] for e in graph_batches["edges"]} == {
        b["batch_id"] for b in batches
    }
    stats = (await http.get("/api/enrichment/stats")).json()
    assert stats["total_enrichments"] == 12 and stats["p95_latency_ms"] is not None
    batch_stats = (await http.get("/api/batches/stats")).json()
    assert batch_stats["by_trigger"] == {"idle_timeout": 2}
    figures = await admin.data("PipelineFigures")
    assert figures["enrichmentStats"]["totalEnrichments"] == 12
    assert figures["batchStats"]["byTrigger"] == {"idle_timeout": 2}
    # the analysis went through the LLM queue: tokens counted on its task
    events = (await admin.data("SecurityEvents"))["securityEvents"]
    assert events["totalCount"] == 2

    # a page of events with batches, detections and enrichments: one statement per level
    statements: list[str] = []
    async with open_state(settings, listen=False) as state:
        event.listen(
            state.engine.sync_engine,
            "before_cursor_execute",
            lambda *args: statements.append(args[2]),
        )
        result = await build_schema(settings).execute(
            operations()["SecurityEventsDeep"],
            variable_values={"first": 50},
            context_value=Context(state=state, principal=Principal(subject="t", role="viewer")),
        )
    assert result.errors is None
    nodes = [e["node"] for e in result.data["securityEvents"]["edges"]]  # type: ignore[index]
    assert sum(len(n["detections"]) for n in nodes) == 12
    assert len(statements) == 4, statements


async def test_max_size_and_manual_flush(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
) -> None:
    pipeline_worker(OPSGRAPH_BATCH_MAX_SIZE="3", OPSGRAPH_BATCH_IDLE_SECONDS="60")
    for i in range(3):
        drop(cameras, "yard", f"y{i}.jpg", jpeg(200 + i))
    (full,) = await analysed_batches(http, 1)
    assert full["trigger"] == "max_size" and full["detection_count"] == 3

    drop(cameras, "porch", "p0.jpg", jpeg(300))

    async def open_batch() -> list[dict[str, Any]]:
        body = (await http.get("/api/batches/active", params={"camera_id": "porch"})).json()
        return [b for b in body["batches"] if b["detection_count"] == 1]

    (active,) = await wait_for(open_batch, timeout=WAIT, what="an open batch on the porch")
    assert active["age_seconds"] >= 0 and active["last_activity_seconds"] >= 0
    flushed = await http.post(f"/api/batches/{active['batch_id']}/flush")
    assert flushed.status_code == 200
    assert flushed.json() == {
        "status": "flushed",
        "batch_id": active["batch_id"],
        "detection_count": 1,
        "message": "Batch sent for analysis",
    }
    # a closed batch cannot be flushed again; an unknown one neither
    assert (await http.post(f"/api/batches/{active['batch_id']}/flush")).status_code == 404
    assert (await http.post("/api/batches/batch_nope/flush")).status_code == 404
    again = (await admin.data("FlushBatch", batchId=active["batch_id"]))["flushBatch"]
    assert again["batch"] is None and again["errors"][0]["code"] == "NOT_FOUND"
    batches = await analysed_batches(http, 2)
    porch = next(b for b in batches if b["camera_id"] == "porch")
    assert porch["trigger"] == "manual_flush"
    detail = (await http.get(f"/api/batches/{porch['batch_id']}")).json()
    assert len(detail["detection_ids"]) == 1 and detail["event_id"] == porch["event_id"]
    assert (await http.get("/api/batches/batch_nope")).status_code == 404


async def test_open_batch_survives_a_killed_worker_and_duplicates_are_ignored(
    http: httpx.AsyncClient, cameras: Path, pipeline_worker: Callable[..., Proc], engine: Any
) -> None:
    first = pipeline_worker("pipeline-a", OPSGRAPH_BATCH_IDLE_SECONDS="3")
    for i in range(4):
        drop(cameras, "gate", f"g{i}.jpg", jpeg(400 + i))
    drop(cameras, "gate", "g0-copy.jpg", jpeg(400))  # the same picture uploaded twice

    async def four_in_batch() -> list[dict[str, Any]]:
        body = (await http.get("/api/batches/active", params={"camera_id": "gate"})).json()
        return [b for b in body["batches"] if b["detection_count"] == 4]

    (active,) = await wait_for(
        four_in_batch, timeout=WAIT, what="four detections in the open batch"
    )
    first.kill()  # SIGKILL while the batch is open
    # its idle deadline (3 s) passes, and half a second more, while no worker runs: the batch
    # stays open
    idle = await wait_for(
        four_in_batch,
        until=lambda open_: not open_ or open_[0]["last_activity_seconds"] > 3.5,
        what="the open batch idle past its deadline",
    )
    assert [b["batch_id"] for b in idle] == [active["batch_id"]]
    pipeline_worker("pipeline-b", OPSGRAPH_BATCH_IDLE_SECONDS="3")
    (done,) = await analysed_batches(http, 1)
    assert done["batch_id"] == active["batch_id"] and done["trigger"] == "idle_timeout"
    assert done["detection_count"] == 4
    enrichments = (await http.get("/api/enrichment", params={"camera_id": "gate"})).json()
    assert enrichments["total"] == 4  # no detection lost, none counted twice
    async with engine.connect() as conn:
        detections = await conn.scalar(
            text("SELECT count(*) FROM detections WHERE camera_id = 'gate'")
        )
    assert detections == 4  # the copy of g0.jpg made none


async def test_corrupt_image_is_dead_lettered_without_retries(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    engine: Any,
) -> None:
    pipeline_worker()
    drop(cameras, "lobby", "broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    drop(cameras, "lobby", "fine.jpg", jpeg(500))

    async def dead() -> dict[str, Any]:
        body: dict[str, Any] = (await http.get("/api/dlq/stats")).json()
        return body if body["detection_queue_count"] == 1 else {}

    stats = await wait_for(dead, timeout=WAIT, what="the corrupt image in the DLQ")
    assert stats["total_count"] == 1 and stats["analysis_queue_count"] == 0
    jobs = (await http.get("/api/dlq/jobs/dlq:detection_queue")).json()
    (job,) = jobs["jobs"]
    assert jobs["queue_name"] == "dlq:detection_queue" and jobs["count"] == 1
    assert job["error"].startswith("Invalid image format")
    assert job["attempt_count"] == 1  # not retryable: one attempt
    assert job["original_job"]["camera_id"] == "lobby"
    assert job["original_job"]["file_path"].endswith("broken.jpg")
    assert job["queue_name"] == "detection_queue"
    assert job["first_failed_at"] and job["last_failed_at"]
    # the pipeline went on with the good picture
    (batch,) = await analysed_batches(http, 1)
    assert batch["detection_count"] == 1
    graph = (await admin.data("DlqJobs", queue="dlq:detection_queue"))["dlqJobs"]
    assert [j["taskId"] for j in graph] == [job["task_id"]]
    assert (await http.get("/api/dlq/jobs/dlq:nope")).status_code == 404
    assert (await http.get("/api/dlq/jobs/detection_queue")).status_code == 404
    assert (await http.get("/api/dlq/jobs/dlq:detection_queue?limit=1001")).status_code == 422
    # requeued through GraphQL, the same task runs again (one more attempt) and, still
    # corrupt, comes back to the DLQ with its history kept
    requeued = (await admin.data("RequeueDlqJob", queue="detection_queue"))["requeueDlqJob"]
    assert requeued["taskIds"] == [job["task_id"]] and requeued["remainingCount"] == 0

    async def dead_again() -> dict[str, Any]:
        return await dead()

    await wait_for(dead_again, timeout=WAIT, what="the corrupt image back in the DLQ")
    task = (await admin.data("Task", id=job["task_id"]))["task"]
    reasons = [t["reason"] for t in task["transitions"]]
    assert "requeued from dlq:detection_queue" in reasons
    unknown = (await admin.data("RequeueDlqJob", queue="nope"))["requeueDlqJob"]
    assert unknown["errors"][0]["code"] == "NOT_FOUND"
    # mutating DLQ calls take the seed's X-API-Key; a viewer's key may not clear
    async with make_sessionmaker(engine)() as session, session.begin():
        _, operator_key = await api_keys.create_api_key(
            session=session, name="ops", role="ai_admin", tenant_id=None
        )
        _, viewer_key = await api_keys.create_api_key(
            session=session, name="dash", role="viewer", tenant_id=None
        )
    async with httpx.AsyncClient(base_url=str(http.base_url)) as bare:
        path = "/api/dlq/dlq:detection_queue"
        refused = await bare.delete(path, headers={"X-API-Key": viewer_key})
        assert refused.status_code == 403
        cleared = await bare.delete(path, headers={"X-API-Key": operator_key})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["cleared_count"] == 1
    assert (await http.get("/api/dlq/stats")).json()["total_count"] == 0


class FakeDetector(Receiver):
    """A detection server on a port of its own, started and stopped at will; it answers
    `status` (an error status: the service is failing, or refusing the request) when that is
    set, and counts the requests it answered per picture (`seen`) and in all (`calls`)."""

    def __init__(self) -> None:
        super().__init__("/{path:path}", reply=self.answer, methods=("GET", "POST"))
        self.seen: dict[str, int] = {}
        self.status = 200

    @property
    def calls(self) -> int:
        return sum(1 for r in self.received if r.path == "/detect")

    def answer(self, request: Received) -> Response:
        if request.path != "/detect":  # the health probe
            return Response()
        if self.status != 200:
            return Response(status_code=self.status)
        key = hashlib.sha256(request.json()["image"].encode()).hexdigest()
        self.seen[key] = self.seen.get(key, 0) + 1
        return JSONResponse(
            {
                "detections": [{"label": "person", "confidence": 0.91, "bbox": [1, 2, 3, 4]}],
                "model": "yolo26",
                "version": "test",
            }
        )


@pytest.fixture
async def detector() -> AsyncIterator[FakeDetector]:
    d = FakeDetector()
    yield d
    await d.stop()


async def test_detector_down_then_dlq_then_requeue_all_processes_each_once(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    detector: FakeDetector,
) -> None:
    pipeline_worker(
        OPSGRAPH_DETECTOR_URL=detector.url,
        OPSGRAPH_PIPELINE_MAX_RETRIES="2",
        OPSGRAPH_CIRCUIT_BREAKER_FAILURE_THRESHOLD="100",  # this test is about the DLQ
    )
    for i in range(3):
        drop(cameras, "dock", f"d{i}.jpg", jpeg(600 + i))

    async def all_dead() -> dict[str, Any]:
        body: dict[str, Any] = (await http.get("/api/dlq/stats")).json()
        return body if body["detection_queue_count"] == 3 else {}

    await wait_for(all_dead, timeout=WAIT, what="three dead-lettered detections")
    jobs = (await http.get("/api/dlq/jobs/dlq:detection_queue", params={"limit": 10})).json()
    assert all(j["error"].startswith("Connection refused") for j in jobs["jobs"])
    assert all(j["attempt_count"] == 3 for j in jobs["jobs"])  # first try + 2 retries
    assert all(j["first_failed_at"] < j["last_failed_at"] for j in jobs["jobs"])

    await detector.start()
    one = (await http.post("/api/dlq/requeue/dlq:detection_queue")).json()
    assert one["requeued_count"] == 1 and one["remaining_count"] == 2
    assert one["task_ids"] == [jobs["jobs"][0]["task_id"]]  # oldest first
    rest = (await http.post("/api/dlq/requeue-all/dlq:detection_queue")).json()
    assert rest["requeued_count"] == 2 and rest["remaining_count"] == 0
    await all_analysed(http, 3)
    assert sorted(detector.seen.values()) == [1, 1, 1]  # each picture detected exactly once
    # a requeued task ran again: one more RUNNING, a fresh retry budget, its errors kept
    task = (await admin.data("Task", id=one["task_ids"][0]))["task"]
    runs = [t["toStatus"] for t in task["transitions"]]
    assert runs.count("RUNNING") == 4 and task["status"] == "COMPLETED"
    assert task["retryCount"] == 0
    assert len(task["errors"]) == 3 and all("Connection refused" in e for e in task["errors"])
    requeued = [
        t for t in task["transitions"] if t["reason"] == "requeued from dlq:detection_queue"
    ]
    assert [(t["fromStatus"], t["toStatus"]) for t in requeued] == [("FAILED", "QUEUED")]
    assert (await http.get("/api/dlq/stats")).json()["total_count"] == 0
    empty = (await http.post("/api/dlq/requeue/dlq:detection_queue")).json()
    assert empty["success"] is False and empty["requeued_count"] == 0


async def _detection_attempts(engine: Any) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT coalesce(sum(attempts), 0) FROM tasks WHERE task_type = 'detection'")
            )
        )


async def test_breaker_opens_for_every_process_and_recovers(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    detector: FakeDetector,
    engine: Any,
) -> None:
    # given a detector that fails (503) and a worker whose breaker opens after 3 failures
    detector.status = 503
    await detector.start()
    pipeline_worker(
        OPSGRAPH_DETECTOR_URL=detector.url,
        OPSGRAPH_PIPELINE_MAX_RETRIES="20",
        OPSGRAPH_CIRCUIT_BREAKER_FAILURE_THRESHOLD="3",
        OPSGRAPH_CIRCUIT_BREAKER_RECOVERY_TIMEOUT="1",
    )
    for i in range(3):
        drop(cameras, "lane", f"l{i}.jpg", jpeg(700 + i))

    async def breaker() -> dict[str, Any]:
        body: dict[str, Any] = (await http.get("/api/system/circuit-breakers")).json()
        return body

    async def opened() -> dict[str, Any]:
        body = await breaker()
        return body if body["circuit_breakers"]["yolo26"]["state"] == "open" else {}

    # the worker saw the failures; the API, another process, sees the breaker open
    body = await wait_for(opened, timeout=WAIT, what="the detector's breaker open")
    yolo = body["circuit_breakers"]["yolo26"]
    assert yolo["failure_count"] >= 3 and body["open_count"] >= 1
    assert set(body["circuit_breakers"]) >= {"yolo26", "florence-2", "nemotron"}
    health = await http.get("/api/system/health")
    assert health.json()["models"]["yolo26"]["circuit_breaker"] in ("open", "half_open")
    assert health.json()["status"] != "healthy"

    # while open, tasks wait without spending attempts: every attempt is a call the detector
    # answered, and after the opening ones only the half-open probes (at most 2 per opening)
    async def reopened_twice() -> dict[str, Any]:
        found = (await breaker())["circuit_breakers"]["yolo26"]
        return found if found["times_opened"] >= 3 else {}

    await wait_for(reopened_twice, timeout=WAIT, what="two failed half-open periods")

    # an attempt is recorded before its call reaches the detector: under load a probe may be
    # on its way, so wait for a moment when every recorded attempt is an answered call (a
    # refusal that spent an attempt would never be one)
    async def attempts_answered() -> int:
        attempts = await _detection_attempts(engine)
        return attempts if attempts == detector.calls else 0

    attempts = await wait_for(
        attempts_answered, timeout=WAIT, what="every attempt a call the detector answered"
    )
    again = (await breaker())["circuit_breakers"]["yolo26"]
    assert attempts <= 3 + 2 * (again["times_opened"] - 1) + 3  # + calls under way
    assert (await http.get("/api/dlq/stats")).json()["total_count"] == 0

    # an operator resets the open breaker
    reset = await http.post("/api/system/circuit-breakers/yolo26/reset")
    assert reset.status_code == 200 and reset.json()["state"] == "closed"
    # the detector recovers: half open, then closed after two good probes (when the reset
    # breaker has opened again meanwhile), and every picture is detected once
    detector.status = 200

    async def half_open_or_closed() -> str:
        state = str((await breaker())["circuit_breakers"]["yolo26"]["state"])
        return state if state in ("half_open", "closed") else ""

    assert await wait_for(
        half_open_or_closed, timeout=WAIT, what="the breaker letting probes through"
    )

    async def closed() -> dict[str, Any]:
        b = (await breaker())["circuit_breakers"]["yolo26"]
        return b if b["state"] == "closed" else {}

    yolo = await wait_for(closed, timeout=WAIT, what="the breaker closed again")
    assert yolo["times_opened"] >= 3
    # the outage spreads the detections out: they may land in more than one batch
    await all_analysed(http, 3)
    assert sorted(detector.seen.values()) == [1, 1, 1]
    assert (await http.post("/api/system/circuit-breakers/nope/reset")).status_code == 404


async def test_a_refused_request_does_not_count_against_the_breaker(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    detector: FakeDetector,
) -> None:
    # a detector that refuses every request (400): the service is up, the requests are bad
    detector.status = 400
    await detector.start()
    pipeline_worker(
        OPSGRAPH_DETECTOR_URL=detector.url, OPSGRAPH_CIRCUIT_BREAKER_FAILURE_THRESHOLD="2"
    )
    for i in range(4):
        drop(cameras, "shed", f"s{i}.jpg", jpeg(760 + i))

    async def dead() -> dict[str, Any]:
        body: dict[str, Any] = (await http.get("/api/dlq/stats")).json()
        return body if body["detection_queue_count"] == 4 else {}

    await wait_for(dead, timeout=WAIT, what="four refused detections in the DLQ")
    jobs = (await http.get("/api/dlq/jobs/dlq:detection_queue")).json()["jobs"]
    assert [j["attempt_count"] for j in jobs] == [1, 1, 1, 1]  # not retried
    assert detector.calls == 4
    yolo = (await http.get("/api/system/circuit-breakers")).json()["circuit_breakers"]["yolo26"]
    assert yolo["state"] == "closed" and yolo["failure_count"] == 0


async def test_breaker_states_on_redis(redis_client: Any) -> None:
    breakers = Breakers(
        redis_client,
        BreakerConfig(failure_threshold=5, recovery_timeout=0.5, success_threshold=2),
    )
    for _ in range(4):
        closed = await breakers.allow("svc")
        await breakers.record("svc", ok=False, generation=closed, error="down")
    assert (await breakers.states(["svc"]))[0].state == "closed"
    # a call admitted while closed, still running when the breaker opens
    late = await breakers.allow("svc")
    await breakers.record("svc", ok=False, generation=closed, error="down")
    (state,) = await breakers.states(["svc"])
    assert state.state == "open" and state.failure_count == 5 and state.last_error == "down"
    with pytest.raises(CircuitOpen):
        await breakers.allow("svc")
    await asyncio.sleep(0.6)  # the recovery timeout (0.5 s) passes: the time is what is tested
    assert (await breakers.states(["svc"]))[0].state == "half_open"
    probe = await breakers.allow("svc")  # two test calls per recovery period, not more
    assert probe != late
    await breakers.allow("svc")
    with pytest.raises(CircuitOpen):
        await breakers.allow("svc")
    # the late call's success was not a probe: it closes nothing
    await breakers.record("svc", ok=True, generation=late)
    await breakers.record("svc", ok=True, generation=late)
    assert (await breakers.states(["svc"]))[0].state == "half_open"
    await breakers.record("svc", ok=True, generation=probe)
    assert (await breakers.states(["svc"]))[0].state == "half_open"
    await breakers.record("svc", ok=True, generation=probe)
    assert (await breakers.states(["svc"]))[0].state == "closed"
    # a failure while half open opens it again at once
    closed = await breakers.allow("svc")
    for _ in range(5):
        await breakers.record("svc", ok=False, generation=closed)
    await asyncio.sleep(0.6)  # the recovery timeout passes again
    probe = await breakers.allow("svc")
    await breakers.record("svc", ok=False, generation=probe)
    assert (await breakers.states(["svc"]))[0].state == "open"
    await breakers.reset("svc")
    assert (await breakers.states(["svc"]))[0].state == "closed"


async def test_opening_many_batches_on_one_connection(engine: Any) -> None:
    """PostgreSQL switches a statement it has run five times to a generic plan; opening a
    camera's batch must still match the partial unique index then."""
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        for i in range(12):
            detection = Detection(
                task_id=uuid.uuid4(),
                camera_id=f"cam-{i}",
                file_path=f"/x/{i}.jpg",
                file_hash=f"{i:064}",
                objects=[{"label": "person", "confidence": 0.9}],
                model_name="yolo26",
                captured_at=datetime.now(UTC),
            )
            session.add(detection)
            await session.flush()
            batch = await batches.add_detection(session=session, detection=detection)
            assert batch is not None and batch.detection_count == 1
    async with sessionmaker() as session:
        opened = await queries.active_batches(session=session)
    assert len(opened) == 12


async def test_vision_enricher_and_analyzer_over_the_openai_api(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
) -> None:
    """Enrichment through an OpenAI-compatible vision endpoint (the image as a data URL) and
    analysis through the LLM provider, both against a local server speaking the OpenAI API."""

    def chat(request: Received) -> Response:
        body = request.json()
        content = body["messages"][-1]["content"]
        if isinstance(content, list):  # the vision request
            answer = {
                "description": "Adult in a red coat at the door",
                "attributes": {"clothing": ["red coat"]},
                "confidence": 0.88,
            }
        else:
            answer = {"risk_score": 72, "summary": "someone lingering", "reasoning": "night"}
        reply: Response = chat_reply(body["model"], answer, prompt_tokens=120, completion_tokens=30)
        return reply

    async with Receiver("/v1/chat/completions", reply=chat) as server:
        pipeline_worker(
            OPSGRAPH_ENRICHER_BASE_URL=f"{server.url}/v1",
            OPSGRAPH_ENRICHER_MODEL="florence-2-large",
            OPSGRAPH_LLM_BASE_URL=f"{server.url}/v1",
            OPSGRAPH_ANALYZER_MODEL="nemotron-mini",
        )
        drop(cameras, "door", "d0.jpg", jpeg(800))
        (batch,) = await analysed_batches(http, 1)
    calls = [r.json() for r in server.received]
    vision = [c for c in calls if isinstance(c["messages"][-1]["content"], list)]
    assert len(vision) == 1 and vision[0]["model"] == "florence-2-large"
    image = vision[0]["messages"][-1]["content"][1]["image_url"]["url"]
    assert image.startswith("data:image/jpeg;base64,")
    (enrichment,) = (await http.get("/api/enrichment")).json()["enrichments"]
    assert enrichment["description"] == "Adult in a red coat at the door"
    assert enrichment["attributes"] == {"clothing": ["red coat"]}
    assert enrichment["model_name"] == "florence-2-large"
    event = (await admin.data("SecurityEventDetail", id=batch["event_id"]))["securityEvent"]
    assert event["riskScore"] == 72 and event["riskLevel"] == "high"
    assert event["modelName"] == "nemotron-mini" and event["summary"] == "someone lingering"
    analysis = [c for c in calls if isinstance(c["messages"][-1]["content"], str)]
    assert "Adult in a red coat" in analysis[0]["messages"][-1]["content"]


async def test_a_failed_analysis_is_dead_lettered_and_requeued_into_an_event(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
) -> None:
    """The analysis stage's DLQ path: the LLM fails (500) through the retries, the batch is
    marked failed and the analysis dead-lettered; once the LLM answers, a requeue stores the
    event."""
    failing = True

    def chat(request: Received) -> Response:
        if failing:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)
        answer = {"risk_score": 35, "summary": "a parcel", "reasoning": "daytime"}
        reply: Response = chat_reply(
            request.json()["model"], answer, prompt_tokens=50, completion_tokens=10
        )
        return reply

    async with Receiver("/v1/chat/completions", reply=chat) as server:
        pipeline_worker(OPSGRAPH_LLM_BASE_URL=f"{server.url}/v1", OPSGRAPH_PIPELINE_MAX_RETRIES="1")
        drop(cameras, "porch", "p0.jpg", jpeg(850))

        async def dead() -> dict[str, Any]:
            body: dict[str, Any] = (await http.get("/api/dlq/stats")).json()
            return body if body["analysis_queue_count"] == 1 else {}

        await wait_for(dead, timeout=WAIT, what="the analysis in the DLQ")
        (batch,) = (await http.get("/api/batches", params={"camera_id": "porch"})).json()["batches"]
        assert batch["status"] == "failed" and batch["event_id"] is None
        (job,) = (await http.get("/api/dlq/jobs/dlq:analysis_queue")).json()["jobs"]
        assert job["attempt_count"] == 2 and "500" in job["error"]
        failing = False
        requeued = (await http.post("/api/dlq/requeue/dlq:analysis_queue")).json()
        assert requeued["requeued_count"] == 1
        (done,) = await analysed_batches(http, 1)
    assert done["batch_id"] == batch["batch_id"] and done["status"] == "completed"
    event = (await admin.data("SecurityEventDetail", id=done["event_id"]))["securityEvent"]
    assert event["riskScore"] == 35 and event["summary"] == "a parcel"
    assert (await http.get("/api/dlq/stats")).json()["total_count"] == 0


async def test_a_window_whose_deadline_passed_with_no_worker_closes_on_restart(
    http: httpx.AsyncClient, cameras: Path, pipeline_worker: Callable[..., Proc]
) -> None:
    first = pipeline_worker(
        "pipeline-w1", OPSGRAPH_BATCH_WINDOW_SECONDS="3", OPSGRAPH_BATCH_IDLE_SECONDS="60"
    )
    drop(cameras, "yard", "y0.jpg", jpeg(870))

    async def opened() -> list[dict[str, Any]]:
        body = (await http.get("/api/batches/active", params={"camera_id": "yard"})).json()
        found: list[dict[str, Any]] = body["batches"]
        return found

    (active,) = await wait_for(opened, timeout=WAIT, what="the yard batch open")
    first.kill()
    # the window's deadline (3 s) passes, and half a second more, while no worker runs: the
    # batch stays open
    still = await wait_for(
        opened,
        until=lambda open_: not open_ or open_[0]["age_seconds"] > 3.5,
        what="the open batch past its window's deadline",
    )
    assert [b["batch_id"] for b in still] == [active["batch_id"]]
    pipeline_worker(
        "pipeline-w2", OPSGRAPH_BATCH_WINDOW_SECONDS="3", OPSGRAPH_BATCH_IDLE_SECONDS="60"
    )
    (done,) = await analysed_batches(http, 1)
    assert done["batch_id"] == active["batch_id"] and done["trigger"] == "time_window"
