"""Supervision of the camera watcher (watcher.py): who watches, and what keeps the watch going.

One watcher per camera root runs at a time across processes: a Redis lock, renewed while it
runs, taken over by a standby process if its holder dies. The watch is supervised: whatever its
event source raises (watchfiles fails a whole batch of events, from its Rust side, on one name
that is not UTF-8 created while it watches) is logged, counted and reported in
`/api/system/health`; after a bounded backoff the folders are rescanned (which finds, and
quarantines, the file that broke it, and the files whose events were lost with it) and watched
again."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from redis.exceptions import RedisError

from app.services.pipeline.quarantine import ALIVE_KEY, STATE_KEY
from workers.context import WorkerState
from workers.pipeline.watcher import Watcher

log = logging.getLogger(__name__)

LOCK_TTL_MS = 10_000
# after the watch fails: wait RESTART_MIN_SECONDS, doubling up to RESTART_MAX_SECONDS while it
# keeps failing (a crash loop neither spins nor leaves new images waiting for long), back to
# the minimum once a watch has lasted STABLE_SECONDS
RESTART_MIN_SECONDS = 0.5
RESTART_MAX_SECONDS = 10.0
STABLE_SECONDS = 60.0
ERROR_CHARS = 300  # of the last error kept for health

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def lock_key(root: Path) -> str:
    return "opsgraph:watcher:" + hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]


def describe(exc: BaseException) -> str:
    """One line for an error; an exception group (what watchfiles raises) by its leaves."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)

    walk(exc)
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaves)[:ERROR_CHARS]


class Supervisor:
    """Keeps one watcher watching while this process holds the lock, and reports its state."""

    def __init__(self, watcher: Watcher, state: WorkerState) -> None:
        self.watcher = watcher
        self.state = state
        self.restarts = 0  # of the watch, in this process

    async def run(self, lost: asyncio.Event) -> None:
        """Watch until `lost` is set, whatever the watch raises: log, count and report the
        error, wait a bounded backoff, rescan and watch again."""
        delay = RESTART_MIN_SECONDS
        while not lost.is_set():
            started = time.monotonic()
            await self._report("running")
            try:
                await self.watcher.watch(lost)
                return  # `lost` is set: the lock is another process's now
            except Exception as exc:  # (an ExceptionGroup too; a cancellation is not caught)
                if time.monotonic() - started >= STABLE_SECONDS:
                    delay = RESTART_MIN_SECONDS  # a new failure, not the same crash loop
                error = describe(exc)
                self.restarts += 1
                log.error(
                    "camera watcher failed (%s); restart %d in %.1fs, with a full rescan",
                    error,
                    self.restarts,
                    delay,
                    # the traceback once per crash loop, not at every turn of it
                    exc_info=exc if delay == RESTART_MIN_SECONDS else None,
                )
                await self._report("restarting", error=error)
            with suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_SECONDS)
            if lost.is_set():
                return
            try:
                await self.watcher.catch_up()
            except Exception as exc:
                log.warning("camera folders not rescanned: %s", describe(exc))

    async def _report(self, status: str, *, error: str | None = None) -> None:
        """The watcher's state for `/api/system/health` (best effort: Redis may be down)."""
        now = datetime.now(UTC).isoformat()
        fields = {"state": status, "since": now}
        if error is not None:
            fields |= {"last_error": error, "last_error_at": now}
        try:
            async with self.state.redis.pipeline(transaction=True) as pipe:
                pipe.hset(STATE_KEY, mapping=fields)
                if error is not None:
                    pipe.hincrby(STATE_KEY, "restarts", 1)
                pipe.set(ALIVE_KEY, self.state.name, px=LOCK_TTL_MS)
                await pipe.execute()
        except Exception as exc:  # reporting must never be what stops the watch
            log.debug("watcher state not recorded in Redis: %s", exc)


async def watch_forever(state: WorkerState) -> None:
    """Hold the root's lock and watch; stand by while another process holds it. What the
    watch raises is `supervise`'s to ride out; should anything else end this, it says so
    (and health reads `stopped`)."""
    try:
        await _hold_and_watch(state)
    except Exception:
        log.exception("camera watcher stopped: no camera folder is watched by %s", state.name)
        raise


async def _hold_and_watch(state: WorkerState) -> None:
    redis = state.redis
    watcher = Watcher(state)
    supervisor = Supervisor(watcher, state)
    key, me = lock_key(watcher.root), state.name
    extend, release = redis.register_script(_EXTEND), redis.register_script(_RELEASE)
    announced = False
    while True:
        try:
            held = await redis.set(key, me, nx=True, px=LOCK_TTL_MS)
        except (RedisError, OSError) as exc:
            log.warning("watcher lock unavailable: %s", exc)
            held = False
        if not held:
            if not announced:
                log.info("another process watches %s; standing by", watcher.root)
                announced = True
            await asyncio.sleep(LOCK_TTL_MS / 3000)
            continue
        log.info("watching %s (one folder per camera)", watcher.root)
        lost = asyncio.Event()

        async def keep(lost: asyncio.Event = lost) -> None:
            while not lost.is_set():
                await asyncio.sleep(LOCK_TTL_MS / 3000)
                try:
                    if not await extend(keys=[key], args=[me, LOCK_TTL_MS]):
                        lost.set()
                        continue
                except (RedisError, OSError):
                    lost.set()
                    continue
                with suppress(RedisError, OSError):
                    # health reads `stopped` if this process dies and no one takes over
                    await redis.set(ALIVE_KEY, me, px=LOCK_TTL_MS)

        keeper = asyncio.create_task(keep())
        watcher.rescan = True
        try:
            await supervisor.run(lost)
        finally:
            keeper.cancel()
            with suppress(RedisError, OSError):
                await release(keys=[key], args=[me])
                await release(keys=[ALIVE_KEY], args=[me])
        log.warning("lost the watcher lock on %s; trying to take it again", watcher.root)
