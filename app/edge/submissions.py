"""Top-level task submissions (an API call submitting one task), group-committed: the tasks
submitted while an earlier write is in flight are stored in one transaction and enqueued in
one Redis pipeline after it. Each is validated alone first, so bad input stays its caller's
error; each caller returns once its task is stored and enqueued, as with its own transaction.

Submissions made inside a larger transaction (a workflow's steps, the pipeline's stages)
keep writing through that transaction's unit of work."""

from __future__ import annotations

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Task
from app.edge.uow import unit_of_work
from app.platform.group_commit import GroupCommit
from app.services.tasks import submissions as task_submissions
from app.services.tasks.specs import TaskDefaults, TaskSpec


class Submissions:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: ArqRedis,
        *,
        batch: int = 100,
        max_queued_per_tenant: int | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._cap = max_queued_per_tenant
        self._group: GroupCommit[Task, Task] = GroupCommit(self._store, max_batch=batch)

    async def submit(self, spec: TaskSpec, defaults: TaskDefaults = TaskDefaults()) -> Task:
        await task_submissions.know_types([spec.task_type], self._sessionmaker)
        return await self.store(
            task_submissions.new_task(spec, defaults)
        )  # bad input: its DomainError

    async def store(self, task: Task) -> Task:
        """Store a task made by task_submissions.new_task (its id is known before it exists).
        A tenant's task under a per-tenant cap is stored alone, its cap checked in its own
        transaction (a refusal must not fail the group's other callers)."""
        if self._cap is not None and task_submissions.capped(task):
            async with unit_of_work(self._sessionmaker, self._redis) as session:
                await task_submissions.check_queued_cap(session, [task], self._cap)
                await task_submissions.store_tasks(session=session, made=[task])
            return task
        return await self._group(task)

    async def _store(self, made: list[Task]) -> list[Task]:
        async with unit_of_work(self._sessionmaker, self._redis) as session:
            await task_submissions.store_tasks(session=session, made=made)
        return made
