"""The attempt writes of one worker process, group-committed: the plain tasks whose attempts
start (or complete) at about the same time are written by one statement (see
app/platform/group_commit.py and attempt_writes), and their events are published after it, in order,
by one background publisher, so an attempt does not wait for Redis between its writes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Sequence
from contextlib import suppress

import asyncpg
from arq.connections import ArqRedis

from app.db.models import Task
from app.kernel.effects import Effect
from app.platform import dispatch
from app.platform.group_commit import GroupCommit
from app.services.tasks import attempt_writes
from app.services.tasks.attempt_writes import Outcome, Written

log = logging.getLogger(__name__)


class Publisher:
    """Carries out committed writes' effects (task events) in the order they were committed,
    as many at a time as have gathered, in one Redis pipeline. At most `bound` wait; a writer
    finding it full waits for room. A process that dies loses what had not gone out, as it
    would between a commit and its own publish: the rows are the truth, events are news."""

    def __init__(self, redis: ArqRedis, *, bound: int = 10_000) -> None:
        self._redis = redis
        self._bound = bound
        self._pending: deque[Effect] = deque()
        self._room = asyncio.Condition()
        self._flusher: asyncio.Task[None] | None = None
        self._put = 0  # effects put so far
        self._done = 0  # effects carried out so far

    async def put(self, effects: Sequence[Effect]) -> None:
        if not effects:
            return
        async with self._room:
            await self._room.wait_for(lambda: len(self._pending) < self._bound)
        self._pending.extend(effects)
        self._put += len(effects)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), 1000))]
                try:
                    await dispatch.carry_out(self._redis, batch)  # Redis errors: logged there
                except Exception:  # anything else must not stall the writes waiting on us
                    log.exception("%d task events were not published", len(batch))
                self._done += len(batch)
                async with self._room:
                    self._room.notify_all()
        finally:
            self._flusher = None

    async def barrier(self) -> None:
        """Return once every effect put before this call has been carried out: a write made
        outside this publisher (a unit of work) must not overtake the events of the writes
        before it (a retry's QUEUED published ahead of its attempt's RUNNING)."""
        target = self._put
        if self._done >= target:
            return
        async with self._room:
            await self._room.wait_for(lambda: self._done >= target)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Let what is pending go out (within `timeout`)."""
        if self._flusher is not None:
            with suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout)


class AttemptWrites:
    def __init__(self, raw: asyncpg.Pool, redis: ArqRedis, worker_name: str, *, batch: int):
        self._raw = raw
        self._redis = redis
        self._worker = worker_name
        self.published = Publisher(redis)
        self.starts: GroupCommit[uuid.UUID, Task | None] = GroupCommit(self._start, max_batch=batch)
        self.completions: GroupCommit[Outcome, Task | None] = GroupCommit(
            self._complete, max_batch=batch
        )

    async def _start(self, task_ids: list[uuid.UUID]) -> list[Task | None]:
        written = await attempt_writes.start_attempts(
            self._raw, task_ids=task_ids, worker_name=self._worker
        )
        return await self._carried_out(task_ids, written)

    async def _complete(self, outcomes: list[Outcome]) -> list[Task | None]:
        written = await attempt_writes.complete_attempts(
            self._raw, outcomes=outcomes, worker_name=self._worker
        )
        return await self._carried_out([o.task.id for o in outcomes], written)

    async def _carried_out(
        self, ids: list[uuid.UUID], written: dict[uuid.UUID, Written]
    ) -> list[Task | None]:
        await self.published.put([e for w in written.values() for e in w.effects])
        return [w.task if (w := written.get(i)) is not None else None for i in ids]
