"""Coalesced snapshot subscriptions: one snapshot now, then one after changes, never more
often than the interval, however many events arrive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

from app.gql.context import Info
from app.platform.events import Event

T = TypeVar("T")
MIN_INTERVAL = 0.5  # seconds between two snapshots


def visible(
    event: Event, tenant_id: str | None, platform_kinds: frozenset[str] = frozenset()
) -> bool:
    """Task events by tenant; installation-wide events (`platform_kinds`) to tenant-less
    principals only."""
    if event.kind in platform_kinds:
        return tenant_id is None
    return event.kind == "task" and (
        tenant_id is None or event.data.get("origin_tenant_id") == tenant_id
    )


async def throttled_snapshots(
    info: Info,
    relevant: Callable[[Event], bool],
    load: Callable[[Info], Awaitable[T]],
    interval: float = MIN_INTERVAL,
    platform_kinds: frozenset[str] = frozenset(),
    every: float | None = None,
) -> AsyncIterator[T]:
    """`every`: also a snapshot after that many seconds without an event (for what changes
    without one, e.g. a worker whose heartbeat key expires)."""
    tenant = info.context.tenant_id
    broker = info.context.state.broker

    def wanted(e: Event) -> bool:
        return visible(e, tenant, platform_kinds) and relevant(e)

    async with broker.subscribe(wanted, buffer=1) as sub:
        last = time.monotonic()
        yield await load(info)
        while True:
            if every is None:
                await sub.get()
            else:
                with suppress(TimeoutError):
                    await asyncio.wait_for(sub.get(), every)
            wait = interval - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            sub.drain()
            last = time.monotonic()
            yield await load(info)
