"""The dead letter queues (seed 002): `dlq:<queue>` is a view of that queue's tasks that
exhausted their retries (or failed for good). Requeue puts the same task back to QUEUED with a
fresh attempt budget, its history kept; clear takes tasks out of the DLQ (they stay FAILED in
history, no longer offered for requeue)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Task, TaskLog
from app.kernel import effects
from app.kernel.errors import InvalidInput, NotFound
from app.kernel.paging import PageRequest, fetch_page
from app.services.tasks import replay
from app.services.tasks import specs as task_specs

PREFIX = "dlq:"
# a DLQ page may start anywhere in the queue (a deep start seeks on the key columns first);
# the bound is the parameter's documented size
MAX_START = 2**31 - 1
REQUEUE_ALL_MAX = 1000


def queue_of(name: str, known: Sequence[str]) -> str:
    """`dlq:<queue>` → `<queue>`; NotFound for anything else."""
    queue = name[len(PREFIX) :] if name.startswith(PREFIX) else None
    if not queue or queue not in known:
        raise NotFound(
            f"unknown dead letter queue {name!r}; known: " + ", ".join(PREFIX + q for q in known),
            field="queue_name",
        )
    return queue


async def known_queues(*, session: AsyncSession, configured: Sequence[str]) -> list[str]:
    """Configured queues, and any other queue that holds dead letters."""
    stmt = select(Task.queue).where(Task.dead_lettered).distinct()
    found = set((await session.execute(stmt)).scalars())
    return list(dict.fromkeys([*configured, *sorted(found)]))


async def find_queue(*, session: AsyncSession, name: str, configured: Sequence[str]) -> str:
    """The queue a `dlq:<queue>` name stands for, among the configured queues and any other
    holding dead letters; NotFound otherwise."""
    return queue_of(name, await known_queues(session=session, configured=configured))


async def counts(*, session: AsyncSession) -> dict[str, int]:
    stmt = select(Task.queue, func.count()).where(Task.dead_lettered).group_by(Task.queue)
    return {q: int(n) for q, n in (await session.execute(stmt)).tuples()}


async def summary(*, session: AsyncSession, always: Sequence[str]) -> dict[str, int]:
    """Dead letters per queue: the `always` queues first (zero included), then any other."""
    found = await counts(session=session)
    out = {q: found.pop(q, 0) for q in always}
    out.update(sorted(found.items()))
    return out


def _dead(queue: str) -> Any:
    return select(Task).where(Task.dead_lettered, Task.queue == queue)


@dataclass(frozen=True)
class DeadLetter:
    task: Task
    error: str
    first_failed_at: datetime | None
    last_failed_at: datetime | None


def _error(task: Task) -> str:
    if not task.errors:
        return "failed"
    last = str(task.errors[-1])
    # "attempt 3: Connection refused ..." -> the error itself
    head, sep, rest = last.partition(": ")
    return rest if sep and head.startswith("attempt ") else last


async def list_dead(
    *, session: AsyncSession, queue: str, start: int = 0, limit: int = 100
) -> list[DeadLetter]:
    if not 0 <= start <= MAX_START:
        raise InvalidInput(f"start must be between 0 and {MAX_START}", field="start")
    page = await fetch_page(
        session,
        _dead(queue),
        order_fields={"dead_lettered_at": Task.dead_lettered_at},
        id_column=Task.id,
        request=PageRequest(
            limit=limit, order_by="dead_lettered_at", descending=False, offset=start
        ),
    )
    rows = [task for task, _ in page.rows]
    first: dict[Any, datetime] = {}
    if rows:
        failures = (
            select(TaskLog.task_id, func.min(TaskLog.at))
            .where(
                TaskLog.task_id.in_([r.id for r in rows]),
                TaskLog.message.like("attempt % failed%"),
            )
            .group_by(TaskLog.task_id)
        )
        first = {k: v for k, v in (await session.execute(failures)).tuples()}
    return [
        DeadLetter(
            task=r,
            error=_error(r),
            first_failed_at=first.get(r.id, r.dead_lettered_at),
            last_failed_at=r.dead_lettered_at,
        )
        for r in rows
    ]


def _changed(session: AsyncSession, queue: str) -> None:
    effects.record(session, effects.Published("dlq", queue, {"queue": queue}))


async def requeue(
    *,
    session: AsyncSession,
    queue: str,
    limit: int = 1,
    task_id: uuid.UUID | None = None,
    input: dict[str, Any] | None = None,
    defaults: task_specs.TaskDefaults = task_specs.TaskDefaults(),
) -> tuple[list[Task], int]:
    """Requeue up to `limit` dead letters of `queue`, oldest first (or the one `task_id` names,
    with `input` replacing its own when given, checked as a submission's is); return them and
    how many remain."""
    reason = f"requeued from {PREFIX}{queue}"
    if task_id is None:
        if input is not None:
            # an edited input replaces one job's: the operator names which
            raise InvalidInput(
                "a requeue with a new input names the dead letter it replaces", field="task_id"
            )
        stmt = (
            _dead(queue)
            .order_by(Task.dead_lettered_at, Task.id)
            .limit(min(limit, REQUEUE_ALL_MAX))
            .with_for_update(skip_locked=True)
        )
        ids = list((await session.execute(stmt.with_only_columns(Task.id))).scalars())
    else:
        found = await session.execute(
            _dead(queue).where(Task.id == task_id).with_for_update().with_only_columns(Task.id)
        )
        if found.scalar_one_or_none() is None:
            raise NotFound(f"no dead letter {task_id} in {PREFIX}{queue}", field="task_id")
        ids = [task_id]
    done = [
        await replay.retry_task(
            session=session, task_id=i, input=input, defaults=defaults, reason=reason
        )
        for i in ids
    ]
    remaining = (await counts(session=session)).get(queue, 0)
    if done:
        _changed(session, queue)
    return done, remaining


async def clear(*, session: AsyncSession, queue: str) -> int:
    stmt = (
        update(Task)
        .where(Task.dead_lettered, Task.queue == queue)
        .values(dead_lettered=False, updated_at=utcnow())
        .returning(Task.id)
    )
    cleared = len((await session.execute(stmt)).all())
    if cleared:
        _changed(session, queue)
    return cleared
