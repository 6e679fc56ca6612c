"""Reading tasks: filtered, sorted pages and counts, many tasks by id, and their transitions
and logs (batched for the GraphQL loaders)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.models import Task, TaskLog, TaskTransition
from app.kernel.paging import Page, PageRequest, fetch_page


def scoped(stmt: Select[Any], tenant_id: str | None) -> Select[Any]:
    return stmt if tenant_id is None else stmt.where(Task.origin_tenant_id == tenant_id)


@dataclass
class TaskFilter:
    statuses: Sequence[str] = ()
    task_types: Sequence[str] = ()
    queues: Sequence[str] = ()
    providers: Sequence[str] = ()
    origin_instance: str | None = None
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    id_prefix: str | None = None
    dead_lettered: bool | None = None


ORDER_FIELDS: dict[str, Any] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "started_at": Task.started_at,
    "completed_at": Task.completed_at,
    "status": Task.status,
    "task_type": Task.task_type,
    "priority": Task.priority,
    "progress": Task.progress,
    "queue": Task.queue,
    "provider_type": Task.provider,
    "duration_ms": Task.completed_at - Task.started_at,
}


async def get_tasks(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Task]:
    rows = (await session.execute(select(Task).where(Task.id.in_(task_ids)))).scalars()
    return {t.id: t for t in rows}


def _filtered(stmt: Select[Any], f: TaskFilter, tenant_id: str | None) -> Select[Any]:
    stmt = scoped(stmt, tenant_id)
    if f.statuses:
        stmt = stmt.where(Task.status.in_(list(f.statuses)))
    if f.task_types:
        stmt = stmt.where(Task.task_type.in_(list(f.task_types)))
    if f.queues:
        stmt = stmt.where(Task.queue.in_(list(f.queues)))
    if f.providers:
        stmt = stmt.where(Task.provider.in_(list(f.providers)))
    if f.origin_instance is not None:
        stmt = stmt.where(Task.origin_instance == f.origin_instance)
    if f.origin_zone is not None:
        stmt = stmt.where(Task.origin_zone == f.origin_zone)
    if f.origin_tenant_id is not None:
        stmt = stmt.where(Task.origin_tenant_id == f.origin_tenant_id)
    if f.created_after is not None:
        stmt = stmt.where(Task.created_at > f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(Task.created_at < f.created_before)
    if f.id_prefix:
        prefix = f.id_prefix.lower().replace("%", "").replace("_", "")
        stmt = stmt.where(cast(Task.id, String).like(prefix + "%"))
    if f.dead_lettered is not None:
        stmt = stmt.where(Task.dead_lettered.is_(f.dead_lettered))
    return stmt


async def list_tasks(
    *,
    session: AsyncSession | AsyncConnection,
    filter: TaskFilter,
    page: PageRequest,
    tenant_id: str | None = None,
    columns: Sequence[str] | None = None,
) -> Page[Any]:
    """Whole rows, or with `columns` lean rows of just those attributes (plain tuples with
    attribute access, no ORM identity map: a read path that hydrates nothing it shows not;
    a plain connection can run it then)."""
    entity: Any = select(Task) if columns is None else select(*(getattr(Task, c) for c in columns))
    return await fetch_page(
        session,
        _filtered(entity, filter, tenant_id),
        order_fields=ORDER_FIELDS,
        id_column=Task.id,
        request=page,
    )


async def count_tasks(
    *, session: AsyncSession | AsyncConnection, filter: TaskFilter, tenant_id: str | None = None
) -> int:
    stmt = _filtered(select(func.count()).select_from(Task), filter, tenant_id)
    return int((await session.execute(stmt)).scalar_one())


async def transitions_for(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaskTransition]]:
    stmt = (
        select(TaskTransition)
        .where(TaskTransition.task_id.in_(task_ids))
        .order_by(TaskTransition.task_id, TaskTransition.id)
    )
    out: dict[uuid.UUID, list[TaskTransition]] = defaultdict(list)
    for row in (await session.execute(stmt)).scalars():
        out[row.task_id].append(row)
    return out


async def logs_for(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaskLog]]:
    stmt = select(TaskLog).where(TaskLog.task_id.in_(task_ids)).order_by(TaskLog.id)
    out: dict[uuid.UUID, list[TaskLog]] = defaultdict(list)
    for row in (await session.execute(stmt)).scalars():
        out[row.task_id].append(row)
    return out
