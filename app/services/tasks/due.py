"""Tasks that run later: what is due, by PostgreSQL's clock, goes to its queue.

A delayed task is stored QUEUED with `due_at` and no queue job; every worker runs a ticker
that calls `enqueue_due`, one pass at a time across the fleet (a transaction-scoped advisory
lock), which clears `due_at` of what is due and leaves each an Enqueue effect for after
commit. Redis holds nothing of a task before its time, so a flushed Redis or every worker
killed loses nothing; a pass that dies after its commit leaves QUEUED tasks without a job,
which the reconciler enqueues as it does any other."""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.kernel import effects
from app.services.tasks.lifecycle import TaskStatus

# what one pass enqueues at most (a ticker runs passes back to back while they are full)
PASS_SIZE = 2000
# the advisory lock one pass holds: "ops" + issue 32 (as the alert evaluator's is "ops" + 004)
PASS_LOCK = 0x6F7073_0032


async def enqueue_due(session: AsyncSession, *, limit: int = PASS_SIZE) -> int | None:
    """One pass: enqueue (after commit) the QUEUED tasks whose time has come, earliest first.
    None when another worker's pass holds the lock (this one does nothing)."""
    locked = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PASS_LOCK})
    if not locked:
        return None
    due = (
        select(Task.id)
        .where(
            Task.due_at.is_not(None),
            Task.due_at <= func.now(),
            Task.status == TaskStatus.QUEUED.value,
        )
        .order_by(Task.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            update(Task)
            .where(Task.id.in_(due))
            .values(due_at=None, updated_at=func.now())
            .returning(
                Task.id,
                Task.queue,
                Task.priority,
                Task.task_type,
                Task.origin_tenant_id,
                Task.concurrency_key,
                Task.concurrency_limit,
                Task.rate_key,
                Task.rate_limit,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    for row in rows:
        effects.record(session, effects.Enqueue.of(row))
    return len(rows)
