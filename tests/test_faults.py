"""Faults and hostile input in the newer domains (issue 22): poison camera files, images over
their bounds, slow webhook receivers, deeply nested JSON, unbounded inputs."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from app.config import Settings
from app.services.pipeline import risk
from app.services.pipeline.quarantine import QUARANTINE_KEY, STATE_KEY
from tests.client import GraphQLClient, rest_client
from tests.conftest import PIPELINE_ENV, make_token
from tests.factories import insert_events
from tests.processes import Proc, start_server
from tests.receiver import Receiver
from tests.test_pipeline import WAIT, analysed_batches, drop, jpeg
from tests.waiting import wait_for


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

    # then the good image still becomes a security event, and no poison file a batch
    batches = await analysed_batches(http, 1)
    assert [b["camera_id"] for b in batches] == ["lobby"], batches

    async def quarantined() -> dict[str, Any]:
        body: dict[str, Any] = (await http.get("/api/system/health")).json()["watcher"]
        return body if body["quarantined"] >= (3 if os.geteuid() == 0 else 4) else {}

    watcher = await wait_for(quarantined, timeout=WAIT, what="the poison files quarantined")
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


# --- the watcher supervised: poison arriving while it watches (issue 29) --------------------
# Each kind of poison file, present at start-up or arriving while the watcher watches, is
# followed by a good image on another camera that must become a batch within the batch window.
# A name that is not UTF-8 arriving while it watches breaks watchfiles itself (an exception
# group from its Rust side): the watcher must log it, restart, rescan, quarantine the file.

BATCH_WINDOW = float(PIPELINE_ENV["OPSGRAPH_BATCH_WINDOW_SECONDS"])
Poison = Callable[[Path, Path, bool], tuple[str, str | None]]


def shown(path: bytes | Path) -> str:
    """A path as the quarantine names it (bytes that are not UTF-8 as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def non_utf8_name(cameras: Path, elsewhere: Path, watching: bool) -> tuple[str, str | None]:
    (cameras / "cam-x").mkdir(exist_ok=True)
    path = os.path.join(os.fsencode(cameras), b"cam-x", b"\xff\xfe.jpg")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, jpeg(21))
    finally:
        os.close(fd)
    return shown(path), "file name is not valid UTF-8"


def refused_camera(cameras: Path, elsewhere: Path, watching: bool) -> tuple[str, str | None]:
    return shown(drop(cameras, "no spaces here", "x.jpg", jpeg(22))), "camera folder name"


def long_path(cameras: Path, elsewhere: Path, watching: bool) -> tuple[str, str | None]:
    folder = cameras.joinpath("deep", *["d" * 200] * 5)  # each name within NAME_MAX
    folder.mkdir(parents=True)
    path = folder / "x.jpg"
    path.write_bytes(jpeg(23))
    assert len(str(path)) > 1024
    return shown(path), "path is longer than 1024 characters"


def link_out(cameras: Path, elsewhere: Path, watching: bool) -> tuple[str, str | None]:
    outside = elsewhere / "secret.jpg"
    outside.write_bytes(jpeg(24))
    (cameras / "linked").mkdir()
    link = cameras / "linked" / "out.jpg"
    link.symlink_to(outside)
    return shown(link), "a link out of the camera folders"


def unreadable(cameras: Path, elsewhere: Path, watching: bool) -> tuple[str, str | None]:
    path = cameras / "locked" / "x.jpg"
    path.parent.mkdir(exist_ok=True)  # (the watching test makes it before the watch starts)
    if os.geteuid() != 0:
        path.write_bytes(jpeg(25))
        path.chmod(0)
        return shown(path), "cannot be read"
    if watching:
        # root reads a file whatever its mode; a folder named like an image fails to be read
        # the same way (only an event names it: the scan walks into folders)
        path.mkdir()
        return shown(path), "cannot be read"
    drop(cameras, "locked", "x.jpg", jpeg(25)).chmod(0)
    return shown(path), None  # root reads it: it flows


POISONS: dict[str, Poison] = {
    # first: what broke the watch; the later kinds then arrive at the restarted watcher
    "non-utf8-name": non_utf8_name,
    "refused-camera": refused_camera,
    "long-path": long_path,
    "link-out": link_out,
    "unreadable": unreadable,
}


async def batch_from(http: httpx.AsyncClient, camera: str) -> dict[str, Any]:
    """The camera's batch, within the batch window (its image was written just before)."""

    async def found() -> list[dict[str, Any]]:
        body = (await http.get("/api/batches", params={"camera_id": camera})).json()
        return list(body["batches"])

    batches: list[dict[str, Any]] = await wait_for(
        found, timeout=BATCH_WINDOW, what=f"a batch from camera {camera}"
    )
    (batch,) = batches
    return batch


async def watcher_health(http: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/api/system/health")).json()["watcher"]
    return body


async def quarantined(http: httpx.AsyncClient, expected: dict[str, str]) -> dict[str, Any]:
    """The watcher's health once every expected file is quarantined; the reasons checked."""

    seen: dict[str, Any] = {}

    async def listed() -> dict[str, Any]:
        body = await watcher_health(http)
        seen.update(body)
        return body if set(expected) <= {f["file"] for f in body["files"]} else {}

    try:
        body: dict[str, Any] = await wait_for(
            listed, timeout=WAIT, what=f"quarantined: {sorted(expected)}"
        )
    except AssertionError as exc:
        missing = set(expected) - {f["file"] for f in seen.get("files", [])}
        raise AssertionError(f"{exc}; missing {sorted(missing)}; watcher {seen}") from None
    reasons = {f["file"]: f["reason"] for f in body["files"]}
    for file, reason in expected.items():
        assert reasons[file].startswith(reason), (file, reasons[file])
    return body


async def test_poison_at_start_up_holds_up_no_other_camera(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    tmp_path: Path,
    redis_client: Any,
) -> None:
    await redis_client.delete(QUARANTINE_KEY, STATE_KEY)  # earlier tests' entries
    # given every kind of poison, each followed by a good image on another camera ...
    expected: dict[str, str] = {}
    for n, (kind, make) in enumerate(POISONS.items()):
        file, reason = make(cameras, tmp_path, False)
        if reason is not None:
            expected[file] = reason
        drop(cameras, f"after-{kind}", "good.jpg", jpeg(n + 30))  # (each its own picture)
    # ... when the watcher starts
    pipeline_worker()

    # then every good image becomes a batch, every poison file is quarantined
    for kind in POISONS:
        await batch_from(http, f"after-{kind}")
    watcher = await quarantined(http, expected)
    # and the watch never failed
    assert (watcher["state"], watcher["restarts"], watcher["last_error"]) == ("running", 0, None)


async def test_poison_arriving_while_watching_holds_up_no_other_camera(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    tmp_path: Path,
    redis_client: Any,
    token_for: Callable[..., str],
    admin: GraphQLClient,
) -> None:
    await redis_client.delete(QUARANTINE_KEY, STATE_KEY)  # earlier tests' entries
    # a camera folder watched from the start: the bad name's own event reaches watchfiles (in
    # a folder made just before, the file can beat the folder's OS watch and only a scan
    # finds it)
    (cameras / "cam-x").mkdir()
    (cameras / "locked").mkdir()  # the same race for the unreadable file's folder
    # (no periodic rescan during the test: only events, and the watcher's own recovery, can
    # bring the files in)
    pipeline_worker(OPSGRAPH_CAMERA_RESCAN_SECONDS="3600")
    # the watcher is in its watch loop (it registers from there): an image became a batch
    drop(cameras, "warm-up", "first.jpg", jpeg(10))
    await batch_from(http, "warm-up")
    assert (await watcher_health(http))["state"] == "running"

    # when each kind of poison arrives, followed by a good image on another camera
    expected: dict[str, str] = {}
    for n, (kind, make) in enumerate(POISONS.items()):
        file, reason = make(cameras, tmp_path, True)
        if reason is not None:
            expected[file] = reason
        drop(cameras, f"after-{kind}", "good.jpg", jpeg(n + 40))
        # then the good image becomes a batch within the batch window
        await batch_from(http, f"after-{kind}")

    # and the poison files are quarantined, the one that broke the watch included
    await quarantined(http, expected)

    # and health tells the watch failed, and that it runs again
    async def running_again() -> dict[str, Any]:
        body = await watcher_health(http)
        return body if body["state"] == "running" and body["restarts"] >= 1 else {}

    watcher: dict[str, Any] = await wait_for(
        running_again, timeout=WAIT, what="the watcher restarted"
    )
    # once: the file that broke it was quarantined by the rescan, not met again and again
    assert watcher["restarts"] == 1
    assert "WatchfilesRustInternalError" in watcher["last_error"]
    assert watcher["last_error_at"] is not None and watcher["worker"]
    # the GraphQL door tells the same
    graph = (await admin.data("SystemHealth"))["systemHealth"]["watcher"]
    assert (graph["state"], graph["restarts"], graph["lastError"], graph["quarantined"]) == (
        "running",
        1,
        watcher["last_error"],
        len(expected),
    )

    # which a tenant reads none of: the route is installation-wide, the tenant's health
    # names no file or folder of the host
    tenant = {"Authorization": f"Bearer {token_for('tenant_admin', 'tenant-a')}"}
    assert (await http.get("/api/system/health", headers=tenant)).status_code == 403
    seen = await http.get("/api/v1/monitoring/health", headers=tenant)
    assert seen.status_code == 200
    assert str(cameras) not in seen.text and "last_error" not in seen.text


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

    (job,) = await wait_for(dead, timeout=WAIT, what="the oversized image in the DLQ")
    assert job["error"] == "Invalid image format: the file is over the 2000-byte limit"
    assert job["attempt_count"] == 1


# --- deliveries: one slow receiver stalls nothing -------------------------------------------------


class Dribbler:
    """A receiver that reads a request and answers one byte a second, forever; it counts the
    connections it holds at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.connections += 1
        self.most_open = max(self.most_open, self.open)

        async def dribble() -> None:
            for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1)  # the dribble: one byte a second is what is tested

        try:
            await reader.readuntil(b"\r\n\r\n")
            sending = asyncio.ensure_future(dribble())
            # the client hanging up is seen at once (an EOF), not at the next write
            hung_up = asyncio.ensure_future(reader.read())
            await asyncio.wait({sending, hung_up}, return_when=asyncio.FIRST_COMPLETED)
            sending.cancel()
            hung_up.cancel()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def __aenter__(self) -> Dribbler:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def _insert_delivery(engine: Any, url: str, queue: str) -> str:
    delivery_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO webhook_deliveries (id, kind, object_id, event, url, body,"
                " tenant_id, queue, status, attempts, next_attempt_at, created_at)"
                " VALUES (:id, 'task', 'o', 'e', :url, '{}', NULL, :queue, 'pending', 0,"
                " now(), now())"
            ),
            {"id": delivery_id, "url": url, "queue": queue},
        )
    return delivery_id


async def _delivery(engine: Any, delivery_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, attempts, last_error FROM webhook_deliveries WHERE id = :id"),
                {"id": delivery_id},
            )
        ).one()
    return dict(row._mapping)


async def test_a_dribbling_receiver_holds_only_its_own_delivery(
    spawn_worker: Callable[..., Proc], engine: Any
) -> None:
    async with Dribbler() as slow, Receiver() as fast:
        # given a worker with a 3 s deadline per attempt, busy with a receiver that answers
        # one byte a second (each byte within any per-read timeout)
        spawn_worker("worker-dribble", "dribbleq", OPSGRAPH_WEBHOOK_TIMEOUT_SECONDS="3")
        stuck = await _insert_delivery(engine, f"http://127.0.0.1:{slow.port}/hook", "dribbleq")
        await wait_for(lambda: slow.connections, what="the slow delivery to be attempted")
        # when another delivery falls due meanwhile, it is sent at once (well within the slow
        # one's 3 s)
        sent = await _insert_delivery(engine, fast.hook_url, "dribbleq")
        await wait_for(
            lambda: _delivery(engine, sent),
            until=lambda row: row["status"] == "delivered",
            timeout=2.5,
            every=0.05,
            what="the second delivery sent without waiting for the first",
        )
        assert len(fast.received) == 1
        # and the slow one is cut at its deadline and tried again later, once at a time
        row = await wait_for(
            lambda: _delivery(engine, stuck),
            until=lambda row: row["attempts"] >= 2,
            timeout=30,
            what="the slow delivery tried again",
        )
        assert row["status"] == "pending"
        assert row["last_error"] == "receiver did not answer within 3 s"
        assert slow.most_open == 1


# --- long jobs finish: checkpoints, per-type limits, every attempt's spend counted ----------------


@pytest.fixture
def jobs_server(env: dict[str, str], logs: Path) -> Iterator[str]:
    """An API process that puts background jobs on a queue of their own, with room for more
    attempts than the default (a loaded machine gets less done in an attempt's second)."""
    proc, base = start_server(
        {**env, "OPSGRAPH_JOBS_QUEUE": "slowjobs", "OPSGRAPH_RETRY_MAX_RETRIES": "10"}, logs
    )
    yield base
    proc.stop()


async def test_an_ai_processing_job_longer_than_an_attempt_judges_each_event_once(
    jobs_server: str, settings: Settings, spawn_worker: Callable[..., Proc], engine: Any
) -> None:
    # given eight events and a worker whose judge takes 0.3 s a call, with 1 s per attempt
    # (three attempts at least; eleven are allowed)
    ids = await insert_events(engine, 8)
    spawn_worker(
        "worker-slowjobs",
        "slowjobs",
        OPSGRAPH_SIMULATED_LATENCY_MS="300",
        OPSGRAPH_JOB_TIME_LIMITS='{"ai_processing": 1.0}',
    )
    async with rest_client(jobs_server, make_token(settings)) as http:
        r = await http.post(
            "/api/jobs", json={"job_type": "ai_processing", "params": {"event_ids": ids}}
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]

        async def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
            return job if job["status"] in ("completed", "failed") else None

        job = await wait_for(finished, timeout=WAIT, what="the job to finish")
    assert job["status"] == "completed", job
    assert job["result"]["evaluated"] == 8
    async with engine.connect() as conn:
        per_event = (
            await conn.execute(
                text("SELECT event_id, count(*) FROM ai_evaluations GROUP BY event_id")
            )
        ).all()
        spent = (
            await conn.execute(
                text(
                    "SELECT (SELECT sum(input_tokens + output_tokens) FROM ai_evaluations),"
                    " input_tokens + output_tokens, attempts FROM tasks WHERE id = :id"
                ),
                {"id": job_id},
            )
        ).one()
    # then each event was judged once, over several attempts, and the job's task counts the
    # tokens every attempt spent
    assert sorted(per_event) == [(i, 1) for i in ids]
    judged, counted, attempts = spent
    assert attempts >= 2 and judged > 0 and counted == judged, spent


# --- export files: one per attempt, complete or absent; CSV safe in a spreadsheet ---------------


async def _export_job(engine: Any, settings: Settings, params: dict[str, Any]) -> Any:
    """An export job's task as a worker would be handed it."""
    from app.db.base import make_sessionmaker
    from app.services.tasks import submissions as task_submissions
    from app.services.tasks.specs import TaskSpec

    async with make_sessionmaker(engine, settings.session_info())() as session, session.begin():
        return await task_submissions.submit_task(
            session=session,
            spec=TaskSpec(
                task_type="export",
                operation=params["target"],
                queue="parked",
                input=params,
                system=True,
            ),
            defaults=settings.task_defaults,
        )


async def _write_export(engine: Any, settings: Settings, job: Any, pause: float) -> Any:
    from app.db.base import make_sessionmaker
    from app.services.jobs import exports as job_exports

    async def progress(value: float, message: str) -> None:
        await asyncio.sleep(pause)  # let the other attempt write in between

    async with make_sessionmaker(engine, settings.session_info())() as session:
        return await job_exports.write(session, job, progress)


async def test_two_attempts_of_one_export_at_once_leave_one_complete_file(
    engine: Any, settings: Settings
) -> None:
    await insert_events(engine, 3000)
    job = await _export_job(engine, settings, {"target": "security_events", "format": "csv"})
    outcomes = await asyncio.gather(
        _write_export(engine, settings, job, 0.01),
        _write_export(engine, settings, job, 0.013),
        return_exceptions=True,
    )
    # each attempt writes a file of its own and ends well: neither pulls the other's away
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    first, second = outcomes
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["file"] == second["file"] and first["rows"] == second["rows"] == 3000
    folder = settings.data_dir / "exports"
    lines = (folder / first["file"]).read_text().splitlines()
    assert len(lines) == 3001 and lines[0].startswith("id,batch_id")
    assert len({line.split(",")[0] for line in lines[1:]}) == 3000  # no row twice, none lost
    assert [p.name for p in folder.iterdir() if p.name.endswith(".partial")] == []


async def test_csv_exports_neutralise_formulas(engine: Any, settings: Settings) -> None:
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "plain"]
    async with engine.begin() as conn:
        for i, message in enumerate(hostile):
            await conn.execute(
                text(
                    "INSERT INTO agent_logs (at, level, level_no, agent_id, message, context,"
                    " received_at) VALUES (now() - make_interval(secs => :i), 'info', 20,"
                    " 'a1', :m, '{}', now())"
                ),
                {"i": len(hostile) - i, "m": message},
            )
    job = await _export_job(engine, settings, {"target": "logs", "format": "csv"})
    result = await _write_export(engine, settings, job, 0)
    with (settings.data_dir / "exports" / result["file"]).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["message"] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
        "plain",
    ]


# --- hostile input: nesting ---------------------------------------------------------------------


async def test_deeply_nested_json_is_bad_input_on_both_doors(
    server: str, settings: Settings, engine: Any
) -> None:
    before = await _task_count(engine)
    deep = "[" * 1000 + "]" * 1000
    async with rest_client(server, make_token(settings)) as http:
        r = await http.post(
            "/api/v1/tasks/batch",
            content='{"tasks": [{"task_type": "echo", "input": {"x": ' + deep + "}}]}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422, r.text
        assert "nested more than 64 levels" in r.json()["detail"][0]["msg"], r.text
        # seed 003's path says the same in its own shape
        r = await http.post(
            "/api/v1/tasks",
            content='{"prompt": ' + deep + "}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and "nested more than 64 levels" in r.json()["detail"]
        document = "mutation($i: SubmitTaskInput!) { submitTask(input: $i) { errors { code } } }"
        for levels in (65, 1000):
            nested = "[" * levels + "]" * levels
            r = await http.post(
                "/graphql",
                content='{"query": '
                + json.dumps(document)
                + ', "variables": {"i": {"taskType": "echo", "input": '
                + nested
                + "}}}",
                headers={"content-type": "application/json"},
            )
            if levels == 1000:  # past what a JSON decoder goes: the body is refused whole
                assert r.status_code == 400 and "nested more than 64" in r.text, r.text
                continue
            assert len(r.json().get("errors") or ()) == 1, r.text  # refused, not submitted
            (error,) = r.json()["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", r.text
            assert error["extensions"]["field"].startswith("$i.input.0.0"), r.text
        for levels in (65, 600):
            literal = "[" * levels + "]" * levels
            r = await http.post(
                "/graphql",
                json={
                    "query": 'mutation { submitTask(input: {taskType: "echo", input: '
                    + literal
                    + "}) { errors { code } } }"
                },
            )
            assert r.status_code in (200, 400), r.text
            assert len(r.json().get("errors") or ()) == 1, r.text  # refused, not submitted
            (error,) = r.json()["errors"]
            if levels == 600:  # graphql-core's own parser guard: a syntax error
                assert "nested too deeply" in error["message"], r.text
                continue
            assert error["extensions"]["code"] == "BAD_USER_INPUT", r.text
            assert "nested more than 64 levels" in error["message"], r.text
    assert await _task_count(engine) == before


async def _task_count(engine: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM tasks")))


# --- bounds on what one request may carry ------------------------------------------------------


async def test_unbounded_inputs_have_bounds_on_both_doors(
    server: str, settings: Settings, engine: Any, client_for: Callable[..., GraphQLClient]
) -> None:
    admin = client_for()
    async with rest_client(server, make_token(settings)) as http:
        beat = "/api/v1/monitoring/agents/bounded/heartbeat"
        too_many = {"name": "b", "type": "t", "metrics": {"latency_ms": [1.0] * 1001}}
        r = await http.post(beat, json=too_many)
        assert r.status_code == 422 and "latency_ms" in str(r.json()["detail"][0]["loc"]), r.text
        for name, value in (("errorsByType", 1), ("tokensByModel", 1)):
            payload = (
                await admin.data(
                    "ReportHeartbeat",
                    agentId="bounded",
                    input={"name": "b", "type": "t", name: {f"k{i}": value for i in range(101)}},
                )
            )["reportHeartbeat"]
            assert payload["errors"], payload  # refused, not recorded
            assert payload["errors"][0]["code"] == "INVALID", payload
            assert "at most 100 keys" in payload["errors"][0]["message"], payload
        r = await http.post(
            "/api/jobs",
            json={"job_type": "ai_processing", "params": {"event_ids": list(range(1, 10_002))}},
        )
        assert r.status_code == 422 and "at most 10000" in r.text, r.text
        r = await http.get("/api/dlq/jobs/dlq:detection_queue", params={"start": 2**31})
        assert r.status_code == 422, r.text
    body = await admin.execute("DlqJobs", queue="dlq:detection_queue", start=-1)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM agents WHERE id = 'bounded'")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM tasks")) == 0


@pytest.mark.timeout(20)
def test_reading_an_analysis_answer_is_linear_in_its_braces() -> None:
    # a quadratic search would take hours over this; a linear one, milliseconds
    with pytest.raises(risk.UnreadableAnswer):
        risk.parse("{" * 200_000)
    found = risk.parse('noise {"risk_score": 42, "summary": "s"} trailing } braces')
    assert found.risk_score == 42


async def test_agent_pages_walk_the_fleet_in_chunks(
    server: str, settings: Settings, engine: Any, client_for: Callable[..., GraphQLClient]
) -> None:
    # given more agents than one chunk of the SQL keyset (200), a third of them offline
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO agents (id, name, type, tenant_id, configuration, health_checks,"
                " dependencies, issues, reported_state, desired_state, restart_generation,"
                " replicas, first_seen_at, started_at, last_heartbeat_at)"
                " SELECT 'fleet-' || lpad(g::text, 3, '0'), 'a', 't', NULL, '{}', '[]', '[]',"
                " '[]', 'running', 'running', 0, 1, now() - interval '1 day', now(),"
                " CASE WHEN g % 3 = 0 THEN now() - interval '1 hour' ELSE now() + interval"
                " '1 hour' END FROM generate_series(1, 450) g"
            )
        )
    admin = client_for()
    for status, expected in ((None, 450), ("OFFLINE", 150)):
        seen: list[str] = []
        after = None
        while True:
            flt = {"type": "t", **({"status": status} if status else {})}
            page = (await admin.data("Agents", first=100, after=after, filter=flt))["agents"]
            assert page["totalCount"] == expected, (status, page["totalCount"])
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == expected and seen == sorted(seen) == sorted(set(seen)), status
        if status:
            assert all(int(i.removeprefix("fleet-")) % 3 == 0 for i in seen)


# --- races: the alert evaluator ----------------------------------------------------------------


async def _evaluate(engine: Any, settings: Settings) -> Any:
    from app.db.base import make_sessionmaker
    from app.services.monitoring import evaluator

    async with make_sessionmaker(engine, settings.session_info())() as session, session.begin():
        return await evaluator.evaluate(session)


async def _racer_alerts(engine: Any) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, occurrence_count FROM alerts WHERE agent_id = 'racer'"
                " ORDER BY triggered_at"
            )
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def _passes_waiting(engine: Any) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query ILIKE '%FROM alerts%FOR UPDATE%'"
                    # this session's database only: other sessions (xdist workers) run passes
                    " AND datname = current_database()"
                )
            )
        )


@pytest.fixture
async def racer_rule(engine: Any) -> None:
    """An agent and a rule that holds for it at every pass (heartbeat age >= 0)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO agents (id, name, type, configuration, health_checks, dependencies,"
                " issues, reported_state, desired_state, restart_generation, replicas,"
                " first_seen_at, started_at, last_heartbeat_at) VALUES ('racer', 'r', 't', '{}',"
                " '[]', '[]', '[]', 'running', 'running', 0, 1, now(), now(), now())"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO alert_rules (id, position, name, metric, operator, threshold,"
                " duration_minutes, severity, channels, recipients, updated_by, updated_at)"
                " VALUES (gen_random_uuid(), 0, 'always', 'heartbeat_age_seconds', 'gte', 0, 0,"
                " 'warning', '[]', '[]', 'test', now())"
            )
        )


async def test_passes_closer_than_an_interval_count_one_occurrence(
    engine: Any, settings: Settings, racer_rule: None
) -> None:
    # as when Redis (which hands out the ticks) is away and every worker tries a pass
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM monitoring_passes"))
    outcomes = [await _evaluate(engine, settings) for _ in range(5)]
    assert sum(not o.skipped for o in outcomes) <= 1, outcomes
    alerts_now = await _racer_alerts(engine)
    # one occurrence at most; the session's worker may have taken the interval's one pass
    # (with a snapshot from before the rule existed), so none is also one pass's answer
    assert len(alerts_now) <= 1 and all(n == 1 for _, n in alerts_now), alerts_now
    if any(not o.skipped for o in outcomes):
        assert len(alerts_now) == 1, (outcomes, alerts_now)


async def test_an_operator_resolve_during_a_pass_is_not_undone(
    engine: Any, settings: Settings, racer_rule: None
) -> None:
    from app.db.base import make_sessionmaker
    from app.services.monitoring import alerts as alert_service

    async def fired() -> list[tuple[str, int]]:
        found = await _racer_alerts(engine)
        if not found:  # a pass of ours (or a worker's) makes it fire
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM monitoring_passes"))
            await _evaluate(engine, settings)
        return found

    await wait_for(fired, what="the racer's alert to fire")
    async with engine.connect() as conn:
        alert_id = await conn.scalar(text("SELECT id FROM alerts WHERE agent_id = 'racer'"))
    sessions = make_sessionmaker(engine, settings.session_info())
    # given an operator's resolve under way (the alert row locked, not yet committed) ...
    async with sessions() as operator, operator.begin():
        await alert_service.resolve(
            session=operator,
            alert_id=alert_id,
            actor="ops",
            resolution="fixed by hand",
            root_cause=None,
            tenant_id=None,
        )
        # ... when a pass starts meanwhile and waits on the alert row
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM monitoring_passes"))
        racing = asyncio.ensure_future(_evaluate(engine, settings))

        async def a_pass_waits() -> bool:
            if await _passes_waiting(engine):
                return True
            assert not racing.done() or racing.result().skipped, "the pass did not wait"
            return racing.done()  # a worker's pass held the lock: it is the one racing

        await wait_for(a_pass_waits, every=0.02, what="a pass waiting on the alert")
    # then once the resolve commits, the pass leaves the alert resolved and fires no new one
    await racing
    await wait_for(  # a worker's pass that raced finishes too
        lambda: _passes_waiting(engine),
        until=lambda waiting: waiting == 0,
        every=0.02,
        what="every pass that waited on the alert to finish",
    )
    assert await _racer_alerts(engine) == [("resolved", 1)]
