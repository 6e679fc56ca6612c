"""Reading jobs: the seed's list, the search with its facets, statistics, a job's attempts,
and its logs. Every query is limited to tasks of the job types (and to a tenant when the
caller is scoped to one)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from typing import cast as cast_type

from sqlalchemy import Float, Select, String, cast, extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task, TaskLog, TaskTransition
from app.kernel.errors import InvalidInput
from app.services.jobs import types
from app.services.rows import Listing, matching, of_tenant, within

DURATION = extract("epoch", Task.completed_at - Task.started_at)
ORDER = {
    "created_at": Task.created_at,
    "started_at": Task.started_at,
    "completed_at": Task.completed_at,
    "updated_at": Task.updated_at,
    "progress": Task.progress,
    "duration": cast(DURATION, Float),
    "job_type": Task.task_type,
    "status": Task.status,
}
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
# task_logs levels (lower case, "warning"/"warn") as seed 002's words
_LEVEL_OF = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "ERROR",
}


@dataclass(frozen=True)
class JobFilter:
    job_types: Sequence[str] = ()
    statuses: Sequence[str] = ()  # lifecycle statuses (QUEUED ...)
    queue: str | None = None
    text: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None
    has_error: bool | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    tenant_id: str | None = None


def _rows(stmt: Any) -> Select[Any]:
    """A multi-column select, typed for the filter helper (SQLAlchemy types selects by
    their column tuple)."""
    return cast_type(Select[Any], stmt.select_from(Task))


def _filtered(stmt: Select[Any], f: JobFilter, *, facet: str | None = None) -> Select[Any]:
    """`facet`: leave that field's own filter out (a facet counts every value of its field
    under the other filters)."""
    unknown = [t for t in f.job_types if t not in types.JOB_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown job type {unknown[0]!r}; known: {', '.join(types.JOB_TYPES)}",
            field="job_type",
        )
    wanted = f.job_types if f.job_types and facet != "job_type" else types.JOB_TYPES
    stmt = stmt.where(Task.task_type.in_(list(wanted)))
    stmt = matching(of_tenant(stmt, Task.origin_tenant_id, f.tenant_id), Task, f, "queue")
    if f.statuses and facet != "status":
        stmt = stmt.where(Task.status.in_(list(f.statuses)))
    if f.text:
        like = "%" + f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                Task.task_type.ilike(like),
                Task.operation.ilike(like),
                cast(Task.errors, String).ilike(like),
                cast(Task.meta, String).ilike(like),
            )
        )
    stmt = within(stmt, Task.created_at, f.created_after, f.created_before)
    stmt = within(stmt, Task.completed_at, f.completed_after, f.completed_before)
    if f.has_error is not None:
        has = func.jsonb_array_length(Task.errors) > 0
        stmt = stmt.where(has if f.has_error else ~has)
    if f.min_duration is not None:
        stmt = stmt.where(f.min_duration <= DURATION)
    if f.max_duration is not None:
        stmt = stmt.where(f.max_duration >= DURATION)
    return stmt


JOBS: Listing[Task, JobFilter] = Listing(Task, _filtered, ORDER, sort_field="sort")
list_jobs, count_jobs = JOBS.page, JOBS.count


@dataclass
class Facets:
    by_status: dict[str, int] = field(default_factory=dict)  # seed words
    by_type: dict[str, int] = field(default_factory=dict)


async def facets(*, session: AsyncSession, filter: JobFilter) -> Facets:
    """The seed's `aggregations`: counts by status and by type, each under every filter but
    its own (so a search for running jobs still shows how many are pending, completed ...),
    each in one grouped query."""
    out = Facets()
    by_status = _filtered(_rows(select(Task.status, func.count())), filter, facet="status")
    for status, n in (await session.execute(by_status.group_by(Task.status))).all():
        out.by_status[types.STATUS_WORDS[status]] = int(n)
    by_type = _filtered(_rows(select(Task.task_type, func.count())), filter, facet="job_type")
    for kind, n in (await session.execute(by_type.group_by(Task.task_type))).all():
        out.by_type[kind] = int(n)
    return out


@dataclass
class Stats:
    total_jobs: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    avg_duration_seconds: float | None
    jobs_today: int
    jobs_this_hour: int


async def stats(*, session: AsyncSession, tenant_id: str | None) -> Stats:
    f = JobFilter(tenant_id=tenant_id)
    found = await facets(session=session, filter=f)
    now = utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour = now - timedelta(hours=1)
    row = (
        await session.execute(
            _filtered(
                select(
                    func.avg(DURATION).filter(Task.status == "COMPLETED"),
                    func.count().filter(Task.created_at >= day),
                    func.count().filter(Task.created_at >= hour),
                ).select_from(Task),
                f,
            )
        )
    ).one()
    avg, today, this_hour = row
    return Stats(
        total_jobs=sum(found.by_status.values()),
        by_status={w: found.by_status.get(w, 0) for w in types.STATUSES},
        by_type={t: found.by_type.get(t, 0) for t in types.JOB_TYPES},
        avg_duration_seconds=None if avg is None else round(float(avg), 2),
        jobs_today=int(today),
        jobs_this_hour=int(this_hour),
    )


async def transitions(session: AsyncSession, job_id: uuid.UUID) -> list[TaskTransition]:
    stmt = (
        select(TaskTransition)
        .where(TaskTransition.task_id == job_id)
        .order_by(TaskTransition.at, TaskTransition.id)
    )
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime
    ended_at: datetime | None
    status: str  # seed word: how the attempt ended (running while it runs)


def attempts(history: Sequence[TaskTransition]) -> list[Attempt]:
    """Each move to RUNNING starts an attempt; the next transition ends it."""
    out: list[Attempt] = []
    for i, t in enumerate(history):
        if t.to_status != "RUNNING":
            continue
        end = history[i + 1] if i + 1 < len(history) else None
        ended = None if end is None else end.to_status
        status = (
            "running"
            if ended is None
            else "retrying"
            if ended == "QUEUED"
            else types.STATUS_WORDS.get(ended, ended.lower())
        )
        out.append(Attempt(len(out) + 1, t.at, end.at if end else None, status))
    return out


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    level: str
    message: str


async def logs(
    *,
    session: AsyncSession,
    job_id: uuid.UUID,
    level: str | None,
    since: datetime | None,
    limit: int,
) -> list[LogLine]:
    if level is not None and level.upper() not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", field="level")
    stmt = select(TaskLog).where(TaskLog.task_id == job_id)
    if since is not None:
        stmt = stmt.where(TaskLog.at >= since)
    if level is not None:
        floor = LEVELS[level.upper()]
        allowed = [raw for raw, word in _LEVEL_OF.items() if LEVELS[word] >= floor]
        stmt = stmt.where(TaskLog.level.in_(allowed))
    rows = (await session.execute(stmt.order_by(TaskLog.at, TaskLog.id).limit(limit))).scalars()
    return [LogLine(r.at, _LEVEL_OF.get(r.level, r.level.upper()), r.message) for r in rows]


def seconds_between(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 3)
