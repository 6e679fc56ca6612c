"""The prebuilt statements of the per-task hot path (submit, start, complete).

Each writes the status change and its transition row in one statement (a data-modifying CTE)
and returns the task, so an attempt costs one round trip per change. They are built once with
bound parameters: building and coercing a statement per call costs more than running it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    UUID,
    DateTime,
    Float,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.orm import aliased

from app.db.models import Task, TaskTransition
from app.services.tasks.lifecycle import TaskStatus

# attribute name -> column name ("meta" is stored as "metadata")
TASK_COLUMNS = {a.key: a.columns[0].name for a in Task.__mapper__.column_attrs}
TASKS = Task.__table__
TRANSITIONS = TaskTransition.__table__


def with_transition(change: Any, frm: str | None, reason: Any) -> Any:
    """SELECT the changed task rows (as Task) while inserting one transition row for each."""
    changed = change.returning(*TASKS.c).cte("changed")
    recorded = insert(TRANSITIONS).from_select(  # type: ignore[arg-type]
        ["task_id", "from_status", "to_status", "at", "reason"],
        select(changed.c.id, literal(frm, String), changed.c.status, changed.c.updated_at, reason),
    )
    return select(aliased(Task, changed)).add_cte(recorded.cte("recorded"))


SUBMIT = with_transition(
    insert(TASKS).values({c.name: bindparam(c.name, type_=c.type) for c in TASKS.c}),  # type: ignore[arg-type]
    None,
    literal("submitted"),
)


# SUBMIT for many tasks: the rows travel as one JSON parameter, so the statement is the same
# text whatever the batch (prepared and cached once; a multi-row VALUES would be compiled anew
# for every batch, which costs more than running it). Each task gets its transition.
SUBMIT_MANY = text(
    """
WITH changed AS (
  INSERT INTO tasks SELECT * FROM jsonb_populate_recordset(NULL::tasks, CAST(:rows AS jsonb))
  RETURNING id, status, updated_at
), recorded AS (
  INSERT INTO task_transitions (task_id, from_status, to_status, at, reason)
  SELECT id, NULL, status, updated_at, 'submitted' FROM changed
)
SELECT count(*) FROM changed
"""
)


def submit_many_params(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {"rows": json.dumps(rows, default=_json_default)}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # UUIDs


def _start_change(which: Any) -> Any:
    """QUEUED -> RUNNING for the task(s) `which` selects, under the one set of guards."""
    return (
        update(TASKS)  # type: ignore[arg-type]
        .where(
            which,
            TASKS.c.status == TaskStatus.QUEUED.value,
            TASKS.c.cancel_requested_at.is_(None),
        )
        .values(
            status=TaskStatus.RUNNING.value,
            updated_at=bindparam("now"),
            attempts=TASKS.c.attempts + 1,
            worker_name=bindparam("worker"),
            next_attempt_at=None,
            started_at=func.coalesce(TASKS.c.started_at, bindparam("now")),
        )
    )


_START_REASON = func.concat(
    "attempt ", literal_column("changed.attempts"), " on ", bindparam("worker")
)
START = with_transition(
    _start_change(TASKS.c.id == bindparam("tid")), TaskStatus.QUEUED.value, _START_REASON
)

# What a completion sets, per task (the worker's name is the batch's).
_OUTCOME: dict[str, Any] = {
    "tid": UUID(as_uuid=True),
    "now": DateTime(timezone=True),
    "result": JSONB(),
    "in_tokens": Integer(),
    "out_tokens": Integer(),
    "cost": Float(),
    "provider": String(),
    "model": String(),
    "latency": Float(),
    "requests": JSONB(),
    "history": JSONB(),
}


def _complete_change(v: dict[str, Any]) -> Any:
    """RUNNING -> COMPLETED with the outcome `v` (bound parameters, or one row's columns of a
    batch), only if the worker still owns the attempt."""
    return (
        update(TASKS)  # type: ignore[arg-type]
        .where(
            TASKS.c.id == v["tid"],
            TASKS.c.status == TaskStatus.RUNNING.value,
            TASKS.c.worker_name == bindparam("worker"),
            # a cancel requested while the attempt ran wins over its result
            TASKS.c.cancel_requested_at.is_(None),
        )
        .values(
            status=TaskStatus.COMPLETED.value,
            updated_at=v["now"],
            completed_at=v["now"],
            result=v["result"],
            progress=100.0,
            input_tokens=TASKS.c.input_tokens + v["in_tokens"],
            output_tokens=TASKS.c.output_tokens + v["out_tokens"],
            cost_usd=TASKS.c.cost_usd + v["cost"],
            provider=func.coalesce(v["provider"], TASKS.c.provider),
            model=func.coalesce(v["model"], TASKS.c.model),
            latency_ms=func.coalesce(v["latency"], TASKS.c.latency_ms),
            service_requests=TASKS.c.service_requests.op("||")(v["requests"]),
            progress_history=TASKS.c.progress_history.op("||")(v["history"]),
        )
    )


COMPLETE = with_transition(
    _complete_change({name: bindparam(name, type_=t) for name, t in _OUTCOME.items()}),
    TaskStatus.RUNNING.value,
    literal("completed"),
)


@dataclass(frozen=True)
class Raw:
    """A statement compiled once for a plain asyncpg connection: its text, the order of its
    positional parameters, and the values of those the statement itself fixes (literals)."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[n] if n in params else self.fixed[n] for n in self.names]


def raw(statement: Any) -> Raw:
    compiled = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    return Raw(compiled.string, tuple(compiled.positiontup or ()), dict(compiled.params))


# The worker's hot path (attempt_writes): the very statements above, one source of truth, for
# tasks outside any workflow (a workflow step's start is one of its workflow's reactions), and
# for many tasks at once: the attempts one worker process starts or completes together are
# written by one statement (group commit). A batch's ids travel as one array and its outcomes
# as one JSON document, so the statement text never changes (prepared once).
_PLAIN = TASKS.c.workflow_id.is_(None)
RAW_START_PLAIN = raw(
    with_transition(
        _start_change(and_(TASKS.c.id == bindparam("tid"), _PLAIN)),
        TaskStatus.QUEUED.value,
        _START_REASON,
    )
)
RAW_START_MANY = raw(
    with_transition(
        _start_change(and_(TASKS.c.id == any_(bindparam("tids", type_=ARRAY(UUID))), _PLAIN)),
        TaskStatus.QUEUED.value,
        _START_REASON,
    )
)
RAW_COMPLETE = raw(COMPLETE)
_OUTCOMES = (
    func.jsonb_to_recordset(bindparam("outcomes", type_=JSONB))
    .table_valued(*(column(name, t) for name, t in _OUTCOME.items()))
    .render_derived(name="outcome", with_types=True)
)
RAW_COMPLETE_MANY = raw(
    with_transition(
        _complete_change({name: _OUTCOMES.c[name] for name in _OUTCOME}),
        TaskStatus.RUNNING.value,
        literal("completed"),
    )
)
