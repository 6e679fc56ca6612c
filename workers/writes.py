"""The attempt writes of one worker process, group-committed: the plain tasks whose attempts
start (or complete) at about the same time are written by one statement, and their events go
out in one Redis pipeline after it (see app/group_commit.py and attempt_writes)."""

from __future__ import annotations

import uuid

import asyncpg
from arq.connections import ArqRedis

from app import dispatch
from app.db.models import Task
from app.group_commit import GroupCommit
from app.services import attempt_writes
from app.services.attempt_writes import Outcome, Written


class AttemptWrites:
    def __init__(self, raw: asyncpg.Pool, redis: ArqRedis, worker_name: str, *, batch: int):
        self._raw = raw
        self._redis = redis
        self._worker = worker_name
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
        await dispatch.carry_out(self._redis, [e for w in written.values() for e in w.effects])
        return [w.task if (w := written.get(i)) is not None else None for i in ids]
