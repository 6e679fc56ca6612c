"""The camera AI pipeline end to end: real folders watched by a real worker, detections,
batches, enrichments, analyses and security events, the DLQ and the circuit breakers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.client import GraphQLClient
from tests.processes import Proc

WAIT = 60.0


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


async def until(check: Callable[[], Any], *, timeout: float = WAIT, what: str = "") -> Any:
    """Poll a REST view until `check` returns something truthy (the view is what a user sees)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.2)


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


async def analysed_batches(http: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    async def done() -> list[dict[str, Any]]:
        body = (await http.get("/api/batches", params={"status": "completed"})).json()
        found = [b for b in body["batches"] if b["event_id"] is not None]
        return found if len(found) >= n else []

    found: list[dict[str, Any]] = await until(done, what=f"{n} analysed batch(es)")
    return found


async def test_images_become_security_events_seen_live(
    http: httpx.AsyncClient,
    admin: GraphQLClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
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
