"""Live subscriptions, fed by the process's one event broker and scoped to the caller's tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import strawberry

from app.gql.context import Info
from app.gql.loaders import Loaders
from app.gql.monitoring import load_queue_stats
from app.gql.permissions import CanRead
from app.gql.reads import or_not_found
from app.gql.throttle import throttled_snapshots, visible
from app.gql.types import QueueStats, Task
from app.platform.events import Event
from app.services.tasks import commands as tasks
from app.services.tasks.lifecycle import TaskStatus
from app.services.tasks.snapshots import task_from_snapshot


@strawberry.type
class TaskSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Task changes; filter by id, queue or status. By id, the current state "
        "comes first.",
    )
    async def task_updated(
        self,
        info: Info,
        id: uuid.UUID | None = None,
        queue: str | None = None,
        status: list[TaskStatus] | None = None,
    ) -> AsyncGenerator[Task, None]:
        ctx = info.context
        tenant = ctx.tenant_id
        wanted = {s.value for s in status or []}
        key = str(id) if id else None

        def predicate(e: Event) -> bool:
            return (
                visible(e, tenant)
                and (key is None or e.key == key)
                and (queue is None or e.data.get("queue") == queue)
                and (not wanted or e.data.get("status") in wanted)
            )

        async with ctx.state.broker.subscribe(predicate) as sub:
            if id is not None:
                row = await or_not_found(
                    info, lambda s: tasks.get_task(session=s, task_id=id, tenant_id=tenant)
                )
                if not wanted or row.status in wanted:
                    yield Task.of(row)
            async for event in sub:
                # Fresh loaders per event: relations must not come from an earlier cache.
                ctx.loaders = Loaders(ctx.state.sessionmaker)
                yield Task.of(event.derived("task", task_from_snapshot))

    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Queue figures now, then after changes (at most two per second).",
    )
    async def queue_stats(self, info: Info) -> AsyncGenerator[QueueStats, None]:
        async for snapshot in throttled_snapshots(info, lambda e: True, load_queue_stats):
            yield snapshot
