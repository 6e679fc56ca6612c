"""Group commit: the writes callers ask for while an earlier one is in flight are made
together (one statement or one transaction), and each caller gets its own answer.

Nothing waits for a batch to fill: the first request is written at the next turn of the
event loop, and whatever arrives while a write is in flight goes with the next one. Under
load that turns N commits into a few; alone, a request costs what it did before."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

R = TypeVar("R")
A = TypeVar("A")


class GroupCommit(Generic[R, A]):
    """`write(requests)` returns one answer per request, in order. If a batch's write fails,
    its requests are written one by one, so one request's error stays its own. At most
    `max_waiting` requests wait at once; more callers wait for room (backpressure)."""

    def __init__(
        self,
        write: Callable[[list[R]], Awaitable[list[A]]],
        *,
        max_batch: int = 100,
        max_waiting: int = 10_000,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._room = asyncio.Semaphore(max_waiting)
        self._waiting: list[tuple[R, asyncio.Future[A]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, request: R) -> A:
        async with self._room:
            answer: asyncio.Future[A] = asyncio.get_running_loop().create_future()
            self._waiting.append((request, answer))
            if self._flusher is None:
                self._flusher = asyncio.create_task(self._flush())
            # A caller cancelled before its batch is written is left out of it; once the
            # write is under way it happens whether or not the caller still waits.
            return await answer

    async def _flush(self) -> None:
        batch: list[tuple[R, asyncio.Future[A]]] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: len(batch)]
                batch = [(r, f) for r, f in batch if not f.done()]
                if batch:
                    await self._write_batch(batch)
                batch = []
        except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
            for _, f in [*batch, *self._waiting]:
                if not f.done():
                    f.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            self._waiting.clear()
            raise
        finally:
            self._flusher = None

    async def _write_batch(self, batch: list[tuple[R, asyncio.Future[A]]]) -> None:
        try:
            answers = await self._write([r for r, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.debug("a batch of %d failed (%s); writing them one by one", len(batch), exc)
            for item in batch:
                await self._write_batch([item])
            return
        for (_, f), a in zip(batch, answers, strict=True):
            if not f.done():
                f.set_result(a)
