"""Per-camera batches: detections join the camera's open batch; a batch closes on its window,
its idle timeout, its size or a manual flush, and becomes an analysis task in that same
transaction. State lives in PostgreSQL, so deadlines survive any restart."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Batch, Detection
from app.kernel import effects
from app.kernel.errors import NotFound
from app.services.pipeline.config import PipelineConfig, config_of
from app.services.rows import attributes
from app.services.tasks import submissions as task_submissions
from app.services.tasks.specs import TaskSpec

AGGREGATING, COMPLETED, FAILED = "aggregating", "completed", "failed"
TRIGGERS = ("time_window", "idle_timeout", "max_size", "manual_flush")


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(6)


async def _open_batch(
    session: AsyncSession, camera_id: str, now: datetime, config: PipelineConfig
) -> Batch:
    stmt = (
        select(Batch)
        .where(Batch.camera_id == camera_id, Batch.status == AGGREGATING)
        .with_for_update()
    )
    batch = (await session.execute(stmt)).scalar_one_or_none()
    if batch is not None:
        return batch
    window_ends = now + timedelta(seconds=config.window_seconds)
    await session.execute(
        insert(Batch)
        .values(
            batch_id=new_batch_id(),
            camera_id=camera_id,
            status=AGGREGATING,
            detection_count=0,
            started_at=now,
            last_activity_at=now,
            window_ends_at=window_ends,
            due_at=min(window_ends, now + timedelta(seconds=config.idle_seconds)),
        )
        # another transaction opened one first: join it. The predicate is literal: PostgreSQL
        # matches a partial unique index only against a constant, and a bound parameter stops
        # matching once the statement runs on a generic plan.
        .on_conflict_do_nothing(
            index_elements=["camera_id"], index_where=text(f"status = '{AGGREGATING}'")
        )
    )
    return (await session.execute(stmt)).scalar_one()


async def add_detection(*, session: AsyncSession, detection: Detection) -> Batch | None:
    """Put a detection into its camera's open batch (once: a detection already in a batch
    stays there)."""
    if detection.batch_id is not None:
        return None
    config = config_of(session)
    now = utcnow()
    batch = await _open_batch(session, detection.camera_id, now, config)
    detection.batch_id = batch.batch_id
    batch.detection_count += 1
    batch.last_activity_at = now
    batch.due_at = min(batch.window_ends_at, now + timedelta(seconds=config.idle_seconds))
    if batch.detection_count >= config.max_size:
        await close(session=session, batch=batch, trigger="max_size")
    else:
        changed(session, batch)
    await session.flush()
    return batch


async def close(*, session: AsyncSession, batch: Batch, trigger: str) -> Batch:
    """Close an aggregating batch (locked by the caller) and write its analysis task."""
    config = config_of(session)
    assert batch.status == AGGREGATING and trigger in TRIGGERS
    task = await task_submissions.submit_task(
        session=session,
        spec=TaskSpec(
            task_type="analysis",
            queue=config.analysis_queue,
            priority=50,
            input={"batch_id": batch.batch_id, "camera_id": batch.camera_id},
            config={"model": config.analyzer_model},
            origin_instance=f"camera:{batch.camera_id}",
            origin_reference=batch.batch_id,
            max_retries=config.max_retries,
            system=True,
        ),
        defaults=config.task_defaults,
    )
    batch.status = COMPLETED
    batch.trigger = trigger
    batch.completed_at = utcnow()
    batch.analysis_task_id = task.id
    changed(session, batch)
    await session.flush()
    return batch


async def close_due(*, session: AsyncSession, limit: int = 100) -> list[Batch]:
    """Close every batch whose window or idle deadline has passed (workers call this on a
    timer; several workers never close the same batch: SKIP LOCKED)."""
    stmt = (
        select(Batch)
        .where(Batch.status == AGGREGATING, Batch.due_at <= utcnow())
        .order_by(Batch.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    closed = []
    for batch in (await session.execute(stmt)).scalars():
        # the earlier deadline decides why it closed
        trigger = "time_window" if batch.window_ends_at <= batch.due_at else "idle_timeout"
        closed.append(await close(session=session, batch=batch, trigger=trigger))
    return closed


async def flush(*, session: AsyncSession, batch_id: str) -> Batch:
    stmt = select(Batch).where(Batch.batch_id == batch_id).with_for_update()
    batch = (await session.execute(stmt)).scalar_one_or_none()
    if batch is None or batch.status != AGGREGATING:
        raise NotFound(f"no active batch {batch_id!r}", field="batch_id")
    return await close(session=session, batch=batch, trigger="manual_flush")


async def settle(
    *, session: AsyncSession, batch_id: str, event_id: int | None, error: str | None
) -> None:
    """The analysis finished: the batch points at its event, or is failed with the error."""
    values: dict[str, Any] = (
        {"status": COMPLETED, "event_id": event_id, "error": None}
        if event_id is not None
        else {"status": FAILED, "error": error}
    )
    stmt = update(Batch).where(Batch.batch_id == batch_id).values(**values).returning(Batch)
    batch = (await session.execute(stmt)).scalar_one_or_none()
    if batch is not None:
        changed(session, batch)


SNAPSHOT = ("batch_id", "camera_id", "status", "detection_count", "trigger", "event_id")


def snapshot(batch: Batch) -> dict[str, Any]:
    return attributes(batch, *SNAPSHOT)


def changed(session: AsyncSession, batch: Batch) -> None:
    effects.record(session, effects.Published("batch", batch.batch_id, snapshot(batch)))
