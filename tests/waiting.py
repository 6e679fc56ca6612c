"""Waiting on a condition with a deadline, the one way the tests wait for something to happen
(never a fixed sleep and a hope): `wait_for` in async tests, `wait_for_blocking` in plain ones.
A timeout fails the test naming what was awaited and the last value seen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], Awaitable[T] | T],
    *,
    what: str,
    timeout: float = 20,
    every: float = 0.1,
    until: Callable[[T], object] | None = None,
) -> T:
    """Call `condition` (plain or async) until its value is truthy, or until `until(value)` is
    when given; that value. Fails after `timeout` seconds naming `what` and the last value.

        task = await wait_for(lambda: task_of(id), until=lambda t: t["status"] == "COMPLETED",
                              what=f"task {id} to complete")
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = condition()
        value: Any = await got if inspect.isawaitable(got) else got
        if until(value) if until is not None else value:
            return cast(T, value)
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(every)


def wait_for_blocking(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = 20,
    every: float = 0.1,
    until: Callable[[T], object] | None = None,
) -> T:
    """`wait_for` for a test that is not async (it blocks the thread between looks)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if until(value) if until is not None else value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(every)


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")
