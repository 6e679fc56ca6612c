"""The start and completion of a plain task's attempt as one autocommit statement each, on a
raw asyncpg connection: the worker's hot path, without a session, BEGIN/COMMIT or ORM loading.

A plain task is one no in-transaction reaction watches (workflow steps, pipeline stages,
evaluations, tasks with a webhook): for those the unit of work's path stays the only one.
Each statement changes the row, records its transition and returns the task, exactly as
`tasks.start_attempt` / `tasks.complete_attempt` do; the counter triggers see the same rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.db.base import utcnow
from app.db.models import Task
from app.services import effects
from app.services.audit.evaluations import WATCHED_TYPES as EVALUATED_TYPES
from app.services.lifecycle import TaskStatus, check_transition
from app.services.pipeline.stages import STAGES
from app.services.snapshots import task_snapshot
from app.services.task_statements import TASK_COLUMNS
from app.services.tasks import Usage

# The transition row is written by the same statement (a data-modifying CTE), so the change
# and its record commit together or not at all.
_START = """
WITH changed AS (
  UPDATE tasks SET status = 'RUNNING', updated_at = $2, attempts = attempts + 1,
    worker_name = $3, next_attempt_at = NULL, started_at = coalesce(started_at, $2)
  WHERE id = $1 AND status = 'QUEUED' AND cancel_requested_at IS NULL
    AND workflow_id IS NULL
  RETURNING *
), recorded AS (
  INSERT INTO task_transitions (task_id, from_status, to_status, at, reason)
  SELECT id, 'QUEUED', status, updated_at, concat('attempt ', attempts, ' on ', $3::text)
  FROM changed
)
SELECT * FROM changed
"""

_COMPLETE = """
WITH changed AS (
  UPDATE tasks SET status = 'COMPLETED', updated_at = $3, completed_at = $3, result = $4,
    progress = 100.0,
    input_tokens = input_tokens + $5, output_tokens = output_tokens + $6,
    cost_usd = cost_usd + $7,
    provider = coalesce($8, provider), model = coalesce($9, model),
    latency_ms = coalesce($10, latency_ms),
    service_requests = service_requests || $11::jsonb,
    progress_history = progress_history || $12::jsonb
  WHERE id = $1 AND status = 'RUNNING' AND worker_name = $2
    -- a cancel requested while the attempt ran wins over its result
    AND cancel_requested_at IS NULL
  RETURNING *
), recorded AS (
  INSERT INTO task_transitions (task_id, from_status, to_status, at, reason)
  SELECT id, 'RUNNING', status, updated_at, 'completed' FROM changed
)
SELECT * FROM changed
"""


@dataclass
class Written:
    """The task as the statement left it, and the effects to carry out now it is committed."""

    task: Task
    effects: list[effects.Effect] = field(default_factory=list)


def is_plain(task: Task) -> bool:
    """No reaction inside the transaction depends on this task's changes."""
    return (
        task.workflow_id is None
        and not task.webhook_url
        and task.task_type not in STAGES
        and task.task_type not in EVALUATED_TYPES
    )


def _task(record: asyncpg.Record) -> Task:
    return Task(**{attr: record[col] for attr, col in TASK_COLUMNS.items()})


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
    return _written(await conn.fetchrow(_START, task_id, utcnow(), worker_name))


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
    now = utcnow()
    record = await conn.fetchrow(
        _COMPLETE,
        task.id,
        worker_name,
        now,
        result,
        usage.input_tokens,
        usage.output_tokens,
        float(usage.cost_usd),
        usage.provider,
        usage.model,
        usage.latency_ms,
        [usage.service_request] if usage.service_request else [],
        [{"at": now.isoformat(), "progress": 100.0, "message": "completed"}],
    )
    return _written(record)
