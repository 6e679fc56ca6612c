"""The task types a client may submit: opsgraph's own and those its workers registered."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.permissions import CanRead
from app.services.fleet.heartbeats import live_workers
from app.services.tasks import registry


@strawberry.type(description="One registered definition of a task type (a worker's code).")
class TaskTypeDefinition:
    hash: str
    queue: str
    input_schema: JSON
    retries: int | None
    timeout: float | None
    description: str | None
    first_registered_at: datetime
    last_registered_at: datetime
    workers_serving: int = strawberry.field(description="Live workers running this definition.")


@strawberry.type
class TaskCountByStatus:
    status: str
    count: int


@strawberry.type(description="A task type: what submissions obey, who serves it, its tasks.")
class TaskType:
    name: str
    builtin: bool = strawberry.field(description="One of opsgraph's own types.")
    queue: str | None = strawberry.field(description="Where its tasks go unless one is named.")
    description: str | None
    input_schema: JSON | None = strawberry.field(
        description="The JSON Schema submissions are validated against (the newest definition)."
    )
    retries: int | None = strawberry.field(description="Null: the installation's policy.")
    timeout: float | None = strawberry.field(
        description="Seconds per attempt; null: the installation's policy."
    )
    concurrency: JSON | None = strawberry.field(
        description='{"key": <input field>, "limit": n}: at most n tasks with the same value of '
        "that field run at once; null: no limit."
    )
    rate: JSON | None = strawberry.field(
        description='{"limit": "10/s", "key": "input.domain"}: at most that many of its tasks '
        "start per window, per value of the key (null key: the whole type); null: no limit."
    )
    workers_serving: int = strawberry.field(description="Live workers with its handler now.")
    serving: bool = strawberry.field(
        description="False: no worker serves it now; its tasks wait for one."
    )
    definitions: list[TaskTypeDefinition] = strawberry.field(
        description="Every definition registered, newest first (two during a rolling deploy)."
    )
    counts: list[TaskCountByStatus] = strawberry.field(
        description="The caller's tasks of this type by status."
    )

    @classmethod
    def of(cls, t: registry.TaskTypeInfo) -> TaskType:
        current = t.current
        return cls(
            name=t.name,
            builtin=t.builtin,
            queue=current.queue if current else None,
            description=current.description if current else None,
            input_schema=cast(JSON, current.input_schema) if current else None,
            retries=current.retries if current else None,
            timeout=current.timeout_seconds if current else None,
            concurrency=cast(JSON, current.concurrency) if current else None,
            rate=cast(JSON, current.rate) if current else None,
            workers_serving=len(t.workers),
            serving=t.serving,
            definitions=[
                TaskTypeDefinition(
                    hash=d.definition_hash,
                    queue=d.queue,
                    input_schema=cast(JSON, d.input_schema),
                    retries=d.retries,
                    timeout=d.timeout_seconds,
                    description=d.description,
                    first_registered_at=d.first_registered_at,
                    last_registered_at=d.last_registered_at,
                    workers_serving=len(d.workers),
                )
                for d in t.definitions
            ],
            counts=[TaskCountByStatus(status=s, count=n) for s, n in sorted(t.counts.items())],
        )


@strawberry.type
class TaskTypeQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Every task type a client may submit, by name: opsgraph's own (llm, echo) "
        "and those workers registered from their users' packages.",
    )
    async def task_types(self, info: Info) -> list[TaskType]:
        serving: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for beat in await live_workers(info.context.state.redis):
            for name, definition_hash in beat.types.items():
                serving[name].append((beat.name, definition_hash))
        async with info.context.reading() as session:
            found = await registry.listing(
                session=session, serving=serving, tenant_id=info.context.tenant_id
            )
        return [TaskType.of(t) for t in found]
