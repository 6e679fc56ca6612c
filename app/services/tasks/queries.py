"""Reading tasks: filtered, sorted pages and counts, many tasks by id, and their transitions
and logs (batched for the GraphQL loaders)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task, TaskLog, TaskTransition
from app.services.rows import Listing, grouped, matching, of_tenant, within


def scoped(stmt: Select[Any], tenant_id: str | None) -> Select[Any]:
    return of_tenant(stmt, Task.origin_tenant_id, tenant_id)


@dataclass
class OriginFilter:
    """Where work came from and when: what task and workflow filters share."""

    origin_instance: str | None = None
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def from_origin(stmt: Select[Any], model: Any, f: OriginFilter) -> Select[Any]:
    """`stmt` narrowed to the work of `f`'s origin, created within its times (`model`: a table
    with origin and creation columns)."""
    stmt = matching(stmt, model, f, "origin_instance", "origin_zone", "origin_tenant_id")
    return within(stmt, model.created_at, f.created_after, f.created_before)


_LIFECYCLE_ORDERS = ("created_at", "updated_at", "started_at", "completed_at", "status", "progress")


def lifecycle_order(model: Any) -> dict[str, Any]:
    """The orders of what runs (tasks, workflows): by its times, status, progress, duration."""
    orders = {name: getattr(model, name) for name in _LIFECYCLE_ORDERS}
    return orders | {"duration_ms": model.completed_at - model.started_at}


@dataclass
class TaskFilter(OriginFilter):
    statuses: Sequence[str] = ()
    task_types: Sequence[str] = ()
    queues: Sequence[str] = ()
    providers: Sequence[str] = ()
    id_prefix: str | None = None
    dead_lettered: bool | None = None


ORDER_FIELDS: dict[str, Any] = {
    **lifecycle_order(Task),
    "task_type": Task.task_type,
    "priority": Task.priority,
    "queue": Task.queue,
    "provider_type": Task.provider,
}


async def get_tasks(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Task]:
    rows = (await session.execute(select(Task).where(Task.id.in_(task_ids)))).scalars()
    return {t.id: t for t in rows}


def _filtered(stmt: Select[Any], f: TaskFilter, tenant_id: str | None = None) -> Select[Any]:
    stmt = from_origin(scoped(stmt, tenant_id), Task, f)
    for column, wanted in (
        (Task.status, f.statuses),
        (Task.task_type, f.task_types),
        (Task.queue, f.queues),
        (Task.provider, f.providers),
    ):
        if wanted:
            stmt = stmt.where(column.in_(list(wanted)))
    if f.id_prefix:
        prefix = f.id_prefix.lower().replace("%", "").replace("_", "")
        stmt = stmt.where(cast(Task.id, String).like(prefix + "%"))
    if f.dead_lettered is not None:
        stmt = stmt.where(Task.dead_lettered.is_(f.dead_lettered))
    return stmt


# `columns`: lean rows of just those attributes (a read path that hydrates nothing it does not
# show; a plain connection can run it then). `tenant_id`: that tenant's tasks only.
TASKS: Listing[Task, TaskFilter] = Listing(Task, _filtered, ORDER_FIELDS)
list_tasks, count_tasks = TASKS.page, TASKS.count


async def transitions_for(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaskTransition]]:
    stmt = select(TaskTransition).where(TaskTransition.task_id.in_(task_ids))
    stmt = stmt.order_by(TaskTransition.task_id, TaskTransition.id)
    return await grouped(session, stmt, lambda t: t.task_id, task_ids)


# children shown per task (a handler that fans out to more is read through `tasks` lists)
CHILDREN_SHOWN = 1000


async def children_of(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Task]]:
    """The tasks each of `task_ids` submitted (ctx.submit), oldest first, at most
    CHILDREN_SHOWN each."""
    ranked = (
        select(
            Task.id,
            func.row_number()
            .over(partition_by=Task.parent_id, order_by=(Task.created_at, Task.id))
            .label("n"),
        )
        .where(Task.parent_id.in_(task_ids))
        .subquery()
    )
    stmt = (
        select(Task)
        .join(ranked, ranked.c.id == Task.id)
        .where(ranked.c.n <= CHILDREN_SHOWN)
        .order_by(Task.created_at, Task.id)
    )
    return await grouped(session, stmt, lambda t: t.parent_id, task_ids)


async def logs_for(
    *, session: AsyncSession, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TaskLog]]:
    stmt = select(TaskLog).where(TaskLog.task_id.in_(task_ids)).order_by(TaskLog.id)
    return await grouped(session, stmt, lambda line: line.task_id, task_ids)


# where a task handler's own files live, under the data folder (ctx.folder)
TASK_FILES = "tasks"


def media_file(task: Task, name: str, data_dir: Path) -> Path | None:
    """The stored file of the task's media item `name` (a handler's ctx.media(path=)), only
    if it lies in the task's own folder and exists; None otherwise."""
    folder = (data_dir / TASK_FILES / str(task.id)).resolve()
    for kind in ("outputs", "inputs"):
        for item in (task.media or {}).get(kind) or []:
            if isinstance(item, dict) and item.get("name") == name and item.get("path"):
                file = (data_dir / str(item["path"])).resolve()
                if file.is_relative_to(folder) and file.is_file():
                    return file
                return None
    return None
