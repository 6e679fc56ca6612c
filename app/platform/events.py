"""Events: published to Redis after commit; one subscriber per process fans them out to every
local subscription through a bounded buffer that coalesces when a client falls behind."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "opsgraph:events"


def channel(client: Redis | Pipeline) -> str:
    """The events channel of the Redis database `client` uses. Pub/sub channels are global to a
    Redis server, not per database: two installations on one server (databases 0 and 1, say)
    must never hear each other's events, so every database but 0 has its own channel."""
    db = int(client.connection_pool.connection_kwargs.get("db", 0) or 0)
    return CHANNEL if db == 0 else f"{CHANNEL}:{db}"


T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    kind: str
    key: str
    data: dict[str, Any]
    # One event object reaches every local subscriber: what they derive from it (a Task row
    # rebuilt from the snapshot) is built once and shared here.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def derived(self, name: str, build: Callable[[dict[str, Any]], T]) -> T:
        if name not in self.memo:
            self.memo[name] = build(self.data)
        value: T = self.memo[name]
        return value


def publish_task(pipe: Pipeline, snapshot: dict[str, Any]) -> None:
    """Queue a task event on a pipeline (the caller executes it after commit)."""
    pipe.publish(
        channel(pipe), json.dumps({"kind": "task", "key": snapshot["id"], "data": snapshot})
    )


def publish(pipe: Pipeline, kind: str, key: str, data: dict[str, Any]) -> None:
    pipe.publish(channel(pipe), json.dumps({"kind": kind, "key": key, "data": data}, default=str))


def publish_workflow(pipe: Pipeline, workflow_id: str, status: str, tenant_id: str | None) -> None:
    data = {"id": workflow_id, "status": status, "origin_tenant_id": tenant_id}
    pipe.publish(channel(pipe), json.dumps({"kind": "workflow", "key": workflow_id, "data": data}))


class Subscription:
    """A bounded buffer of events for one subscriber. When full, a new event replaces the
    pending one with the same key (a newer snapshot of the same object), else the oldest
    pending event is dropped; the subscriber never accumulates an unbounded backlog."""

    def __init__(self, predicate: Callable[[Event], bool], maxsize: int) -> None:
        self.predicate = predicate
        self.maxsize = max(1, maxsize)
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.coalesced = 0
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if not self.predicate(event):
            return
        if len(self._items) >= self.maxsize:
            for i, pending in enumerate(self._items):
                if pending.key == event.key and pending.kind == event.kind:
                    self._items[i] = event
                    self.coalesced += 1
                    return
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._ready.set()

    async def get(self) -> Event:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def drain(self) -> list[Event]:
        items = list(self._items)
        self._items.clear()
        return items

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self.get()


class Broker:
    """One Redis pub/sub listener per process; fans events out to local subscriptions."""

    def __init__(self, redis: Redis, *, buffer: int = 64) -> None:
        self._redis = redis
        self._buffer = buffer
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.events_received = 0
        self._retired_coalesced = 0
        self._retired_dropped = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="opsgraph-broker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    @asynccontextmanager
    async def subscribe(
        self, predicate: Callable[[Event], bool], *, buffer: int | None = None
    ) -> AsyncIterator[Subscription]:
        sub = Subscription(predicate, buffer or self._buffer)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            self._retired_coalesced += sub.coalesced
            self._retired_dropped += sub.dropped

    @property
    def coalesced(self) -> int:
        """Events replaced by a newer snapshot in a slow subscriber's buffer (all time)."""
        return self._retired_coalesced + sum(s.coalesced for s in self._subs)

    @property
    def dropped(self) -> int:
        """Events dropped from a full buffer (all time)."""
        return self._retired_dropped + sum(s.dropped for s in self._subs)

    def _fan_out(self, event: Event) -> None:
        for sub in list(self._subs):
            sub.offer(event)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel(self._redis))
                self.connected.set()
                delay = 0.2
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        raw = json.loads(message["data"])
                        event = Event(raw["kind"], raw["key"], raw["data"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("ignoring a malformed event")
                        continue
                    self.events_received += 1
                    self._fan_out(event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.connected.clear()
                log.warning("event listener lost Redis (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
