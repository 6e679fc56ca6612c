"""A record per AI decision, written in the transaction that stores the decision, so the audit
never misses one and never holds one twice. The pipeline's stage reactions record each decision
as an effect (Decided); this module's reaction, registered with the task core after the
pipeline's, writes them before the commit."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditRecord, Detection
from app.kernel import effects
from app.services.tasks import reactions

MAX_SUMMARY = 2000
_READ = "opsgraph.audit.read"  # (the transaction's effects, how many of them were read)


async def react(session: AsyncSession) -> None:
    """Write the decisions this transaction recorded since the last call, in their order."""
    recorded = effects.peek(session)
    seen, start = session.info.get(_READ, (None, 0))
    if seen is not recorded:
        start = 0
    session.info[_READ] = (recorded, len(recorded))
    for e in recorded[start:]:
        if isinstance(e, effects.Decided):
            await record(session, e)


# what a record keeps of the decision as it was made (the rest comes from the deciding task)
KEPT = ("stage", "camera_id", "detection_id", "batch_id", "event_id", "model", "output")


async def record(session: AsyncSession, decision: effects.Decided) -> None:
    snap = decision.snapshot
    result = snap.get("result") or {}
    kept = {name: getattr(decision, name) for name in KEPT}
    await session.execute(
        insert(AuditRecord)
        .values(
            task_id=snap["id"],
            prompt_version=result.get("prompt_version"),
            input_summary=decision.input_summary[:MAX_SUMMARY],
            input_tokens=int(snap.get("input_tokens") or 0),
            output_tokens=int(snap.get("output_tokens") or 0),
            latency_ms=snap.get("latency_ms") or result.get("latency_ms"),
            **kept,
        )
        .on_conflict_do_nothing(index_elements=["task_id"])
    )


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


def register() -> None:
    """Keep the decisions on record; installed after the domains that decide
    (app/edge/domains.py)."""
    reactions.register("audit.records", react)
