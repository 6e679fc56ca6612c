"""DataLoaders, created per request, so lists cost a fixed number of queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from app.db.models import (
    Batch,
    Detection,
    Enrichment,
    Task,
    TaskLog,
    TaskTransition,
    Workflow,
    WorkflowStep,
)
from app.edge.uow import read_only
from app.services.pipeline import queries as pipeline
from app.services.tasks import queries as task_queries
from app.services.workflows import engine as workflows


class Loaders:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self.transitions = DataLoader(load_fn=self._transitions)
        self.logs = DataLoader(load_fn=self._logs)
        self.children = DataLoader(load_fn=self._children)
        self.tasks = DataLoader(load_fn=self._tasks)
        self.steps = DataLoader(load_fn=self._steps)
        # keyed by (the caller's tenant or None, id): a tenant loads only its own
        self.workflows = DataLoader(load_fn=self._workflows)
        self.batches = DataLoader(load_fn=self._batches)
        self.batch_detections = DataLoader(load_fn=self._batch_detections)
        self.detection_enrichments = DataLoader(load_fn=self._detection_enrichments)

    async def _transitions(self, ids: Sequence[uuid.UUID]) -> list[list[TaskTransition]]:
        async with read_only(self._sessionmaker) as session:
            found = await task_queries.transitions_for(session=session, task_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _tasks(self, ids: Sequence[uuid.UUID]) -> list[Task | None]:
        async with read_only(self._sessionmaker) as session:
            found = await task_queries.get_tasks(session=session, task_ids=ids)
        return [found.get(i) for i in ids]

    async def _workflows(
        self, keys: Sequence[tuple[str | None, uuid.UUID]]
    ) -> list[Workflow | None]:
        found: dict[tuple[str | None, uuid.UUID], Workflow] = {}
        async with read_only(self._sessionmaker) as session:
            for tenant in {t for t, _ in keys}:
                ids = [i for t, i in keys if t == tenant]
                rows = await workflows.workflows_by_id(
                    session=session, workflow_ids=ids, tenant_id=tenant
                )
                found.update({(tenant, i): row for i, row in rows.items()})
        return [found.get(k) for k in keys]

    async def _steps(self, ids: Sequence[uuid.UUID]) -> list[list[WorkflowStep]]:
        async with read_only(self._sessionmaker) as session:
            found = await workflows.steps_of(session=session, workflow_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _logs(self, ids: Sequence[uuid.UUID]) -> list[list[TaskLog]]:
        async with read_only(self._sessionmaker) as session:
            found = await task_queries.logs_for(session=session, task_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _children(self, ids: Sequence[uuid.UUID]) -> list[list[Task]]:
        async with read_only(self._sessionmaker) as session:
            found = await task_queries.children_of(session=session, task_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _batches(self, ids: Sequence[str]) -> list[Batch | None]:
        async with read_only(self._sessionmaker) as session:
            found = await pipeline.batches_by_id(session=session, batch_ids=ids)
        return [found.get(i) for i in ids]

    async def _batch_detections(self, ids: Sequence[str]) -> list[list[Detection]]:
        async with read_only(self._sessionmaker) as session:
            found = await pipeline.detections_of_batches(session=session, batch_ids=ids)
        return [found.get(i, []) for i in ids]

    async def _detection_enrichments(self, ids: Sequence[int]) -> list[list[Enrichment]]:
        async with read_only(self._sessionmaker) as session:
            found = await pipeline.enrichments_of_detections(session=session, detection_ids=ids)
        return [found.get(i, []) for i in ids]
