"""The camera folder watcher: `<root>/<camera_id>/<file>` becomes a detection task once per
content hash. Files present at start are picked up too; a file is read only once it has stayed
unchanged for `camera_settle_seconds` (an upload in progress is never read half-written). A
file that cannot be registered (a name that is not UTF-8, a camera folder name the API would
refuse, a link out of the camera root, an unreadable file, or one the database refuses
QUARANTINE_ATTEMPTS times) is quarantined: logged, listed in `/api/system/health`, never tried
again by this process; every other file flows on.

Who watches, and what keeps the watch going when it fails (one watcher per root across
processes, restarts with backoff, health), is supervision.py's."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import RedisError
from watchfiles import Change, awatch

from app.edge.uow import unit_of_work
from app.platform.outages import is_outage
from app.services.pipeline import images
from app.services.pipeline.quarantine import QUARANTINE_KEY, QUARANTINE_MAX
from workers.context import WorkerState

log = logging.getLogger(__name__)

PENDING_MAX = 10_000  # files waiting to settle; beyond it, a rescan catches up
DONE_MAX = 50_000  # (path, size, mtime) already registered: skipped without hashing again
REGISTER_BATCH = 50  # images registered per transaction (one by one when a batch fails)
QUARANTINE_ATTEMPTS = 3  # a file unreadable or refused this often is quarantined
# what the API accepts as a camera id (and what fits the task's origin, "camera:<id>")
CAMERA_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_PATH_CHARS = 1024
# a new folder is scanned when its event comes and again this much later
FOLDER_RECHECK_SECONDS = 2.0


def _stat(path: Path) -> tuple[int, float] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Watcher:
    def __init__(self, state: WorkerState) -> None:
        self.state = state
        self.settings = state.settings
        self.root = self.settings.cameras_folder
        self.pending: dict[Path, float] = {}
        self.done: OrderedDict[tuple[Path, int, float], None] = OrderedDict()
        self.rescan = True
        self.next_scan = 0.0
        # failed registrations per pending file (bounded with `pending`)
        self.failures: dict[Path, int] = {}

    def _is_image(self, path: Path) -> bool:
        rel = path.relative_to(self.root)
        return (
            len(rel.parts) >= 2
            and not any(p.startswith(".") for p in rel.parts)
            and path.suffix.lower() in self.settings.camera_extensions
        )

    def _note(self, path: Path) -> None:
        if len(self.pending) >= PENDING_MAX:
            self.rescan = True  # dropped: the next scan finds it
            return
        self.pending.setdefault(path, time.monotonic())

    def _scan(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath) / name
                if self._is_image(path):
                    self._note(path)

    async def _settled(self) -> None:
        """Register every pending file that has not changed for the settle time (in batches:
        one transaction per REGISTER_BATCH files)."""
        settle = self.settings.camera_settle_seconds
        ready: list[tuple[Path, int, float]] = []
        for path in list(self.pending):
            stat = await asyncio.to_thread(_stat, path)
            if stat is None:
                self.pending.pop(path, None)  # gone (moved away or deleted)
                continue
            size, mtime = stat
            if time.time() - mtime < settle or size == 0:
                continue  # still being written
            if (path, size, mtime) in self.done:
                self.pending.pop(path, None)
                continue
            ready.append((path, size, mtime))
        for start in range(0, len(ready), REGISTER_BATCH):
            chunk = ready[start : start + REGISTER_BATCH]
            if not await self._register_chunk(chunk):
                return  # a store outage: the files stay pending
            while len(self.done) > DONE_MAX:
                self.done.popitem(last=False)

    def _refusal(self, path: Path) -> str | None:
        """Why a file can never become a task (the API's input hygiene), or None."""
        shown = str(path)
        try:
            shown.encode("utf-8")
        except UnicodeEncodeError:
            return "file name is not valid UTF-8"
        if len(shown) > MAX_PATH_CHARS:
            return f"path is longer than {MAX_PATH_CHARS} characters"
        camera = path.relative_to(self.root).parts[0]
        if not CAMERA_ID.match(camera):
            return "camera folder name must be 1 to 128 of A-Z a-z 0-9 _ . : -"
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return "cannot be resolved"
        if not real.is_relative_to(self.root.resolve()):
            # a link out of the camera root is neither hashed nor read
            return "a link out of the camera folders"
        return None

    async def _quarantine(self, entry: tuple[Path, int, float], reason: str) -> None:
        path = entry[0]
        self.pending.pop(path, None)
        self.failures.pop(path, None)
        self.done[entry] = None
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        log.warning("camera file %s quarantined: %s", shown, reason)
        try:
            if await self.state.redis.hlen(QUARANTINE_KEY) < QUARANTINE_MAX:  # type: ignore[misc]
                await self.state.redis.hset(  # type: ignore[misc]
                    QUARANTINE_KEY,
                    shown,
                    json.dumps({"reason": reason, "at": datetime.now(UTC).isoformat()}),
                )
        except (RedisError, OSError) as exc:
            log.debug("quarantine not recorded in Redis: %s", exc)

    async def _register_chunk(self, chunk: list[tuple[Path, int, float]]) -> bool:
        """Register what can be; False when a store outage stopped it (try again later)."""
        hashed: list[tuple[tuple[Path, int, float], str]] = []
        for entry in chunk:
            # (resolving links reads the disk)
            reason = await asyncio.to_thread(self._refusal, entry[0])
            if reason is not None:
                await self._quarantine(entry, reason)
                continue
            try:
                hashed.append((entry, await asyncio.to_thread(_hash, entry[0])))
            except OSError as exc:
                await self._failed(entry, f"cannot be read: {exc.strerror or type(exc).__name__}")
        if not hashed:
            return True
        try:
            await self._register(hashed)
        except Exception as exc:
            if is_outage(exc):
                log.warning("%d image(s) not registered yet: %s", len(hashed), exc)
                return False
            # one of them is refused: each on its own, so the others flow on
            for one in hashed:
                try:
                    await self._register([one])
                except Exception as single:
                    if is_outage(single):
                        return False
                    await self._failed(one[0], f"refused by the database: {type(single).__name__}")
                    continue
                self._registered(one[0])
            return True
        for entry, _ in hashed:
            self._registered(entry)
        return True

    async def _failed(self, entry: tuple[Path, int, float], reason: str) -> None:
        """A failure that may pass (a file being moved, a permission being fixed): the file
        stays pending and is tried again on the next passes, then quarantined."""
        self.failures[entry[0]] = self.failures.get(entry[0], 0) + 1
        if self.failures[entry[0]] >= QUARANTINE_ATTEMPTS:
            await self._quarantine(entry, reason)

    def _registered(self, entry: tuple[Path, int, float]) -> None:
        self.pending.pop(entry[0], None)
        self.failures.pop(entry[0], None)
        self.done[entry] = None

    async def _register(self, files: list[tuple[tuple[Path, int, float], str]]) -> None:
        async with unit_of_work(self.state.sessionmaker, self.state.redis) as session:
            for (path, _, mtime), file_hash in files:
                camera_id = path.relative_to(self.root).parts[0]
                task = await images.register_image(
                    session=session,
                    camera_id=camera_id,
                    file_path=str(path),
                    file_hash=file_hash,
                    captured_at=datetime.fromtimestamp(mtime, UTC),
                )
                if task is None:
                    log.debug("image %s seen before (same content); skipped", path)
                else:
                    log.info("image %s from %s → detection task %s", path.name, camera_id, task.id)

    async def watch(self, lost: asyncio.Event) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tick = max(50, int(min(self.settings.camera_settle_seconds, 1.0) * 500))
        async for changes in awatch(
            self.root, recursive=True, rust_timeout=tick, yield_on_timeout=True, stop_event=lost
        ):
            new_folder = False
            for change, raw in changes:
                path = Path(raw)
                if change != Change.deleted and self._is_image(path):
                    self._note(path)
                elif change == Change.added:
                    # a new folder (a camera's first upload): files written into it before the
                    # OS watch on it was in place send no event of their own, so look
                    self.rescan = True
                    new_folder = True
            if time.monotonic() >= self.next_scan:
                self.rescan = True
            if self.rescan:
                self.rescan = False
                self.next_scan = time.monotonic() + self.settings.camera_rescan_seconds
                await asyncio.to_thread(self._scan)
            if new_folder:
                # and look once more a moment later: a file written after that scan but before
                # the OS watch on the folder was in place sends no event either (under load,
                # that window is wide enough to lose a file until the periodic rescan)
                self.next_scan = min(self.next_scan, time.monotonic() + FOLDER_RECHECK_SECONDS)
            await self._settled()

    async def catch_up(self) -> None:
        """After a failed watch: the events of its last batch are lost, so a full scan finds
        their files (and the one with the bad name, quarantined now instead of breaking the
        watch again). Here, so files flow at the backoff's pace even when the watch cannot
        start at all (no inotify watches left, say); and again on the new watch's first tick,
        for the files written while it was being set up."""
        self.rescan = True
        await asyncio.to_thread(self._scan)
        await self._settled()
