"""A record per AI decision, written in the transaction that stores the decision (the
pipeline's stage reactions), so the audit never misses one and never holds one twice."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditRecord, Detection

MAX_SUMMARY = 2000


async def record(
    session: AsyncSession,
    *,
    stage: str,
    snap: dict[str, Any],
    camera_id: str,
    model: str,
    input_summary: str,
    output: dict[str, Any],
    detection_id: int | None = None,
    batch_id: str | None = None,
    event_id: int | None = None,
) -> None:
    result = snap.get("result") or {}
    await session.execute(
        insert(AuditRecord)
        .values(
            stage=stage,
            task_id=snap["id"],
            camera_id=camera_id,
            detection_id=detection_id,
            batch_id=batch_id,
            event_id=event_id,
            model=model,
            prompt_version=result.get("prompt_version"),
            input_summary=input_summary[:MAX_SUMMARY],
            output=output,
            input_tokens=int(snap.get("input_tokens") or 0),
            output_tokens=int(snap.get("output_tokens") or 0),
            latency_ms=snap.get("latency_ms") or result.get("latency_ms"),
        )
        .on_conflict_do_nothing(index_elements=["task_id"])
    )


def image_name(path: str) -> str:
    return PurePath(path).name


async def for_event(session: AsyncSession, batch_id: str) -> list[AuditRecord]:
    """The decisions behind an event: its analysis, and the detections and enrichments of
    the detections in its batch."""
    in_batch = select(Detection.id).where(Detection.batch_id == batch_id)
    stmt = (
        select(AuditRecord)
        .where(or_(AuditRecord.batch_id == batch_id, AuditRecord.detection_id.in_(in_batch)))
        .order_by(AuditRecord.created_at, AuditRecord.id)
    )
    return list((await session.execute(stmt)).scalars())
