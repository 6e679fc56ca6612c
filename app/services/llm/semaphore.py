"""The LLM priority semaphore, shared by every worker process through Redis.

At most `max_concurrent` holders at once; `reserved` of those slots only high-priority holders
may take; high-priority waiters are admitted before low ones (FIFO within a class). Holders
hold leases that expire unless renewed, so a crashed worker never leaks a slot; waiters refresh
a liveness mark while they poll, so a crashed waiter never blocks the line. Every decision is
one Lua script (semaphore_scripts.py), atomic across processes, on one clock: Redis's own
(`TIME`), never a caller's. Here: the keys, the calls, a holder's slot and the figures."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from app.services.llm import semaphore_scripts as scripts

log = logging.getLogger(__name__)

PREFIX = "opsgraph:sem:"
HOLDERS = PREFIX + "holders"  # zset lease -> expiry ms
HOLDER_CLASS = PREFIX + "holder_class"  # hash lease -> high|low
WAIT = {"high": PREFIX + "wait:high", "low": PREFIX + "wait:low"}  # zset waiter -> arrival ms
ALIVE = PREFIX + "alive"  # zset waiter -> liveness expiry ms
STATS = PREFIX + "stats"  # hash of running totals

WAKE = PREFIX + "wake:"  # list per waiter: a token pushed when it may be admitted

_KEYS = [HOLDERS, HOLDER_CLASS, WAIT["high"], WAIT["low"], ALIVE, STATS]


@dataclass(frozen=True)
class SemaphoreConfig:
    max_concurrent: int = 4
    reserved_high_priority: int = 1
    high_priority_threshold: int = 50
    lease_ttl_seconds: float = 30.0
    poll_interval_seconds: float = 0.5
    waiter_ttl_seconds: float = 3.0

    def priority_class(self, priority: int) -> str:
        return "high" if priority >= self.high_priority_threshold else "low"


@dataclass(frozen=True)
class SemaphoreStats:
    max_concurrent: int
    reserved_high_priority: int
    active_count: int
    active_high_priority: int
    active_low_priority: int
    waiting_high_priority: int
    waiting_low_priority: int
    total_high_priority: int
    total_low_priority: int
    avg_wait_time_high: float
    avg_wait_time_low: float


class SlotWaitExpired(TimeoutError):
    """No slot within the caller's `max_wait`."""


class LeaseLost(Exception):
    """The slot's lease expired before it could be renewed (e.g. Redis was unreachable for
    longer than the lease): another holder may have the slot, so the call must stop."""


async def try_acquire_many(
    redis: Redis, config: SemaphoreConfig, waiters: Sequence[tuple[str, str]]
) -> list[float | None]:
    """One attempt for each (waiter, priority class), in order: the wait in seconds of each
    admitted, None for each not (it stays in line)."""
    results = await redis.register_script(scripts.ACQUIRE)(
        keys=_KEYS,
        args=[
            int(config.lease_ttl_seconds * 1000),
            int(config.waiter_ttl_seconds * 1000),
            config.max_concurrent,
            config.reserved_high_priority,
            WAKE,
            *(part for waiter in waiters for part in waiter),
        ],
    )
    return [None if (waited := float(r)) < 0 else waited / 1000 for r in results]


async def release_many(redis: Redis, config: SemaphoreConfig, leases: Sequence[str]) -> None:
    await redis.register_script(scripts.RELEASE)(
        keys=_KEYS[:5],
        args=[config.max_concurrent, config.reserved_high_priority, WAKE, *leases],
    )


class Calls(Protocol):
    """How a holder reaches the semaphore: `Direct` (a script call per request), or a worker
    process's batching of the requests its holders make at once (workers/llm_slots.py)."""

    async def try_acquire(self, waiter: str, priority_class: str) -> float | None: ...

    async def release(self, lease: str) -> None: ...


@dataclass(frozen=True)
class Direct:
    redis: Redis
    config: SemaphoreConfig

    async def try_acquire(self, waiter: str, priority_class: str) -> float | None:
        return (await try_acquire_many(self.redis, self.config, [(waiter, priority_class)]))[0]

    async def release(self, lease: str) -> None:
        await release_many(self.redis, self.config, [lease])


async def renew(redis: Redis, config: SemaphoreConfig, lease: str) -> bool:
    lease_ms = int(config.lease_ttl_seconds * 1000)
    return bool(await redis.register_script(scripts.RENEW)(keys=[HOLDERS], args=[lease, lease_ms]))


@asynccontextmanager
async def slot(
    redis: Redis,
    config: SemaphoreConfig,
    *,
    priority: int,
    name: str | None = None,
    max_wait: float | None = None,
    detach_release: bool = False,
    calls: Calls | None = None,
) -> AsyncIterator[float]:
    """Wait for a slot, hold it (renewing the lease) while the body runs, then give it back.
    Yields the seconds waited. Each call holds its own lease (`name` is only a readable
    prefix), so two runs of one task never share a slot. Waiting longer than `max_wait`
    raises SlotWaitExpired; a lease that could not be renewed in time cancels the body and
    raises LeaseLost. Cancellation while waiting or holding releases cleanly.
    `detach_release`: the release is sent when the body ends but its reply is not waited
    for (the holder has nothing left to do with the slot; a worker's job ends a round trip
    sooner). A release that fails leaves the lease to expire, as a crashed holder's does.
    `calls`: how acquires and releases reach Redis (default: one script call each)."""
    via = calls or Direct(redis, config)
    lease = f"{name}:{uuid.uuid4().hex[:12]}" if name else str(uuid.uuid4())
    cls = config.priority_class(priority)
    deadline = None if max_wait is None else time.monotonic() + max_wait
    try:
        while True:
            waited = await via.try_acquire(lease, cls)
            if waited is not None:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise SlotWaitExpired(f"no LLM slot within {max_wait:.0f}s")
            # Block until a release or admission wakes us; the timeout keeps our place in
            # line alive and notices leases that expired without a release.
            await redis.blpop([WAKE + lease], timeout=config.poll_interval_seconds)  # type: ignore[misc, arg-type]
        holder = asyncio.current_task()
        lost = asyncio.Event()
        renewer = asyncio.create_task(_keep_renewed(redis, config, lease, holder, lost))
        try:
            yield waited
        except asyncio.CancelledError:
            if lost.is_set() and holder is not None and holder.uncancel() == 0:
                raise LeaseLost(f"lease {lease} expired before it was renewed") from None
            raise
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
    finally:
        if detach_release:
            _detach(via.release(lease))
        else:
            await asyncio.shield(via.release(lease))


# Releases under way in the background (at most one per holder): referenced until done.
_detached: set[asyncio.Task[None]] = set()


def _detach(releasing: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(releasing)
    _detached.add(task)
    task.add_done_callback(_released)


def _released(task: asyncio.Task[None]) -> None:
    _detached.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("releasing an LLM slot failed (its lease will expire): %s", task.exception())


async def _keep_renewed(
    redis: Redis,
    config: SemaphoreConfig,
    lease: str,
    holder: asyncio.Task[Any] | None,
    lost: asyncio.Event,
) -> None:
    """Renew three times per lease period; a renewal that fails for a moment (Redis blip) is
    tried again, but a lease that has expired stops the holder."""
    while True:
        await asyncio.sleep(config.lease_ttl_seconds / 3)
        try:
            renewed = await renew(redis, config, lease)
        except Exception:  # Redis unreachable: the lease may still be valid; try again
            continue
        if not renewed:
            lost.set()
            if holder is not None:
                holder.cancel()
            return


async def stats(redis: Redis, config: SemaphoreConfig) -> SemaphoreStats:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.time()
        pipe.zrange(HOLDERS, 0, -1, withscores=True)
        pipe.hgetall(HOLDER_CLASS)
        pipe.zrange(ALIVE, 0, -1, withscores=True)
        pipe.zrange(WAIT["high"], 0, -1)
        pipe.zrange(WAIT["low"], 0, -1)
        pipe.hgetall(STATS)
        clock, all_holders, classes, all_alive, high, low, totals = await pipe.execute()
    now = clock[0] * 1000 + clock[1] // 1000
    holders = [h for h, expiry in all_holders if expiry > now]
    alive = [w for w, expiry in all_alive if expiry > now]
    classes = {_s(k): _s(v) for k, v in classes.items()}
    live = {_s(w) for w in alive}
    active = [_s(h) for h in holders]
    totals = {_s(k): float(v) for k, v in totals.items()}
    total_high = int(totals.get("total_high", 0))
    total_low = int(totals.get("total_low", 0))
    return SemaphoreStats(
        max_concurrent=int(totals.get("max_concurrent", config.max_concurrent)),
        reserved_high_priority=int(totals.get("reserved", config.reserved_high_priority)),
        active_count=len(active),
        active_high_priority=sum(1 for h in active if classes.get(h) == "high"),
        active_low_priority=sum(1 for h in active if classes.get(h) == "low"),
        waiting_high_priority=sum(1 for w in high if _s(w) in live),
        waiting_low_priority=sum(1 for w in low if _s(w) in live),
        total_high_priority=total_high,
        total_low_priority=total_low,
        avg_wait_time_high=round(totals.get("wait_ms_high", 0) / 1000 / total_high, 3)
        if total_high
        else 0.0,
        avg_wait_time_low=round(totals.get("wait_ms_low", 0) / 1000 / total_low, 3)
        if total_low
        else 0.0,
    )


async def clear_orphans(redis: Redis) -> tuple[int, int]:
    """Drop waiters that no live process polls for any more (high, low); live waiters and
    holders are untouched, so this cannot deadlock running workers."""
    high, low = await redis.register_script(scripts.CLEAR_ORPHANS)(
        keys=[WAIT["high"], WAIT["low"], ALIVE], args=[]
    )
    return int(high), int(low)


async def reset_totals(redis: Redis) -> None:
    await redis.hdel(STATS, "total_high", "total_low", "wait_ms_high", "wait_ms_low")  # type: ignore[misc]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
