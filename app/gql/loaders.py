"""DataLoaders, created per request, so lists cost a fixed number of queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from app.db.models import Task, TaskLog, TaskTransition, WorkflowStep
from app.services import tasks, workflows
from app.uow import read_only


class Loaders:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self.transitions = DataLoader(load_fn=self._transitions)
        self.logs = DataLoader(load_fn=self._logs)
        self.tasks = DataLoader(load_fn=self._tasks)
        self.steps = DataLoader(load_fn=self._steps)

    async def _transitions(self, ids: Sequence[uuid.UUID]) -> list[list[TaskTransition]]:
        async with read_only(self._sessionmaker) as session:
            found = await tasks.transitions_for(session=session, task_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _tasks(self, ids: Sequence[uuid.UUID]) -> list[Task | None]:
        async with read_only(self._sessionmaker) as session:
            found = await tasks.get_tasks(session=session, task_ids=ids)
        return [found.get(i) for i in ids]

    async def _steps(self, ids: Sequence[uuid.UUID]) -> list[list[WorkflowStep]]:
        async with read_only(self._sessionmaker) as session:
            found = await workflows.steps_of(session=session, workflow_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _logs(self, ids: Sequence[uuid.UUID]) -> list[list[TaskLog]]:
        async with read_only(self._sessionmaker) as session:
            found = await tasks.logs_for(session=session, task_ids=ids)
        return [found.get(i, []) for i in ids]
