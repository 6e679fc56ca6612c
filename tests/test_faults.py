"""Faults and hostile input in the newer domains (issue 22): poison camera files, images over
their bounds, deeply nested JSON, unbounded inputs."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.processes import Proc
from tests.test_pipeline import analysed_batches, drop, jpeg, until


def png(width: int, height: int) -> bytes:
    """A small file declaring width x height pixels (a bomb when large: tiny on disk, huge
    once decoded)."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG")
    return out.getvalue()


def poison(cameras: Path, elsewhere: Path) -> None:
    (cameras / "lobby").mkdir()
    bad_name = os.path.join(os.fsencode(cameras / "lobby"), b"bad-\xff-name.jpg")
    with open(bad_name, "wb") as f:
        f.write(jpeg(1))
    drop(cameras, "c" * 200, "far-too-long-camera.jpg", jpeg(2))  # over the origin's column
    drop(cameras, "lobby", "bomb.png", png(20_000, 20_000))  # Pillow's own bomb limit
    drop(cameras, "lobby", "huge.png", png(8_000, 6_000))  # 48 MP: over OPSGRAPH's 40 MP
    drop(cameras, "lobby", "empty.jpg", b"")
    outside = elsewhere / "secret.jpg"
    outside.write_bytes(jpeg(3))
    (cameras / "lobby" / "link-out.jpg").symlink_to(outside)
    drop(cameras, "lobby", "unreadable.jpg", jpeg(4)).chmod(0)


async def test_poison_files_are_quarantined_and_every_other_file_flows_on(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    tmp_path: Path,
) -> None:
    # given a watched folder holding every kind of poison ...
    poison(cameras, tmp_path)
    # ... and a good image written after them
    drop(cameras, "lobby", "good.jpg", jpeg(5))
    pipeline_worker()

    # then the good image still becomes a security event
    (batch,) = await analysed_batches(http, 1)
    assert batch["camera_id"] == "lobby"

    async def quarantined() -> dict[str, Any]:
        body: dict[str, Any] = (await http.get("/api/system/health")).json()["watcher"]
        return body if body["quarantined"] >= (3 if os.geteuid() == 0 else 4) else {}

    watcher = await until(quarantined, what="the poison files quarantined")
    reasons = {f["file"].rsplit("/", 1)[-1]: f["reason"] for f in watcher["files"]}
    assert reasons["bad-\\xff-name.jpg"] == "file name is not valid UTF-8"
    assert reasons["far-too-long-camera.jpg"].startswith("camera folder name")
    assert reasons["link-out.jpg"] == "a link out of the camera folders"
    if os.geteuid() != 0:  # root reads a file whatever its mode
        assert reasons["unreadable.jpg"].startswith("cannot be read")
    # the bomb and the huge image were registered and failed once, at once, as invalid
    # images (never decoded)
    jobs = (await http.get("/api/dlq/jobs/dlq:detection_queue")).json()["jobs"]
    dead = {Path(j["original_job"]["file_path"]).name: j for j in jobs}
    assert sorted(dead) == ["bomb.png", "huge.png"]
    assert all(j["error"].startswith("Invalid image format") for j in dead.values())
    assert "over the 40000000-pixel limit" in dead["huge.png"]["error"]
    assert [j["attempt_count"] for j in dead.values()] == [1, 1]
    # and nothing read the file the link points at
    tasks = (await http.get("/api/v1/monitoring/tasks", params={"page_size": 100})).json()
    assert "secret.jpg" not in str(tasks)


async def test_oversized_files_fail_at_once(
    http: httpx.AsyncClient, cameras: Path, pipeline_worker: Callable[..., Proc]
) -> None:
    pipeline_worker(OPSGRAPH_CAMERA_MAX_IMAGE_BYTES="2000")
    big = Image.effect_noise((200, 200), 100).convert("RGB")
    out = io.BytesIO()
    big.save(out, format="JPEG", quality=95)
    assert len(out.getvalue()) > 2000
    drop(cameras, "yard", "big.jpg", out.getvalue())

    async def dead() -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = (await http.get("/api/dlq/jobs/dlq:detection_queue")).json()[
            "jobs"
        ]
        return jobs

    (job,) = await until(dead, what="the oversized image in the DLQ")
    assert job["error"] == "Invalid image format: the file is over the 2000-byte limit"
    assert job["attempt_count"] == 1
