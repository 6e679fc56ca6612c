"""The start and completion of a plain task's attempt as one autocommit statement each, on a
raw asyncpg connection: the worker's hot path, without a session, BEGIN/COMMIT or ORM loading.

A plain task is one no in-transaction reaction watches (the reactions registered with the
task core: workflow steps, pipeline stages, evaluations; app/services/tasks/reactions.py) and
that has no webhook: for the others the unit of work's path stays the only one.
The statements are task_statements' START and COMPLETE compiled for asyncpg (the row change
and its transition row in one statement, the same guards), so the counter triggers see the
same rows either way. The `_many` forms write the attempts a worker starts or completes at
once in one statement (group commit, see app/platform/group_commit.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.db.base import utcnow
from app.db.models import Task
from app.kernel import effects
from app.services.tasks.commands import Usage, completion_params
from app.services.tasks.lifecycle import TaskStatus, check_transition
from app.services.tasks.reactions import watched
from app.services.tasks.snapshots import detached_task, task_snapshot
from app.services.tasks.statements import (
    RAW_COMPLETE,
    RAW_COMPLETE_MANY,
    RAW_START_MANY,
    RAW_START_PLAIN,
    TASK_COLUMNS,
)


@dataclass
class Written:
    """The task as the statement left it, and the effects to carry out now it is committed."""

    task: Task
    effects: list[effects.Effect] = field(default_factory=list)


def is_plain(task: Task) -> bool:
    """No reaction inside the transaction depends on this task's changes."""
    return not task.webhook_url and not watched(task)


def _task(record: asyncpg.Record) -> Task:
    """The row as a detached Task: nothing here changes it or adds it to a session."""
    return detached_task({attr: record[col] for attr, col in TASK_COLUMNS.items()})


def _written(record: asyncpg.Record | None) -> Written | None:
    if record is None:
        return None
    task = _task(record)
    return Written(task, [effects.TaskChanged(task_snapshot(task))])


async def start_attempt(
    conn: asyncpg.Connection | asyncpg.Pool, *, task_id: uuid.UUID, worker_name: str
) -> Written | None:
    """QUEUED -> RUNNING for a task outside any workflow; None when the task is not such a
    QUEUED task (the caller then takes the unit of work's path, which knows every case)."""
    check_transition(TaskStatus.QUEUED, TaskStatus.RUNNING)
    params = {"tid": task_id, "now": utcnow(), "worker": worker_name}
    return _written(await conn.fetchrow(RAW_START_PLAIN.sql, *RAW_START_PLAIN.args(params)))


async def complete_attempt(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    task: Task,
    worker_name: str,
    result: Any,
    usage: Usage,
) -> Written | None:
    """RUNNING -> COMPLETED for a plain task, only if this worker still owns the attempt."""
    assert is_plain(task), "a task some reaction watches completes through the unit of work"
    check_transition(TaskStatus.RUNNING, TaskStatus.COMPLETED)
    params = completion_params(task.id, worker_name, result, usage)
    record = await conn.fetchrow(RAW_COMPLETE.sql, *RAW_COMPLETE.args(params))
    return _written(record)


async def start_attempts(
    conn: asyncpg.Connection | asyncpg.Pool, *, task_ids: list[uuid.UUID], worker_name: str
) -> dict[uuid.UUID, Written]:
    """start_attempt for many tasks in one statement: those it started, by id."""
    if len(task_ids) == 1:
        one = await start_attempt(conn, task_id=task_ids[0], worker_name=worker_name)
        return {} if one is None else {task_ids[0]: one}
    check_transition(TaskStatus.QUEUED, TaskStatus.RUNNING)
    params = {"tids": task_ids, "now": utcnow(), "worker": worker_name}
    return _by_id(await conn.fetch(RAW_START_MANY.sql, *RAW_START_MANY.args(params)))


@dataclass(frozen=True)
class Outcome:
    task: Task
    result: Any
    usage: Usage


async def complete_attempts(
    conn: asyncpg.Connection | asyncpg.Pool, *, outcomes: list[Outcome], worker_name: str
) -> dict[uuid.UUID, Written]:
    """complete_attempt for many plain tasks in one statement: those it completed, by id."""
    if len(outcomes) == 1:
        o = outcomes[0]
        one = await complete_attempt(
            conn, task=o.task, worker_name=worker_name, result=o.result, usage=o.usage
        )
        return {} if one is None else {o.task.id: one}
    assert all(is_plain(o.task) for o in outcomes)
    check_transition(TaskStatus.RUNNING, TaskStatus.COMPLETED)
    rows = []
    for o in outcomes:
        row = completion_params(o.task.id, worker_name, o.result, o.usage)
        del row["worker"]
        row["tid"], row["now"] = str(row["tid"]), row["now"].isoformat()
        rows.append(row)
    params = {"outcomes": rows, "worker": worker_name}
    return _by_id(await conn.fetch(RAW_COMPLETE_MANY.sql, *RAW_COMPLETE_MANY.args(params)))


def _by_id(records: list[asyncpg.Record]) -> dict[uuid.UUID, Written]:
    out: dict[uuid.UUID, Written] = {}
    for record in records:
        written = _written(record)
        assert written is not None
        out[written.task.id] = written
    return out
