"""Batch audit: which events an `ai_processing` job evaluates (given ids, or a camera and a
time window), those already evaluated left out unless forced."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Evaluation, SecurityEvent, Task
from app.kernel.errors import InvalidInput
from app.services.jobs import actions
from app.services.pipeline.queries import CameraWindow, in_window

MAX_EVENTS = 10_000


@dataclass(frozen=True)
class Selection(CameraWindow):
    event_ids: list[int] | None = None
    force: bool = False


async def select_events(session: AsyncSession, selection: Selection) -> list[int]:
    if selection.event_ids is not None and len(selection.event_ids) > MAX_EVENTS:
        raise InvalidInput(f"at most {MAX_EVENTS} events per batch", field="event_ids")
    stmt = select(SecurityEvent.id)
    if selection.event_ids is not None:
        stmt = stmt.where(SecurityEvent.id.in_(selection.event_ids))
    stmt = in_window(stmt, SecurityEvent, SecurityEvent.created_at, selection)
    if not selection.force:
        evaluated = select(Evaluation.event_id)
        stmt = stmt.where(SecurityEvent.id.not_in(evaluated))
    stmt = stmt.order_by(SecurityEvent.id).limit(MAX_EVENTS + 1)
    ids = [int(i) for i in (await session.execute(stmt)).scalars()]
    if len(ids) > MAX_EVENTS:
        raise InvalidInput(
            f"more than {MAX_EVENTS} events match: narrow the camera or the dates",
            field="start_date",
        )
    return ids


async def queue(
    *,
    session: AsyncSession,
    selection: Selection,
    actor: str,
    tenant_id: str | None,
    is_admin: bool,
) -> tuple[list[int], Task | None]:
    """The selected events as one `ai_processing` job (none when nothing is left to judge)."""
    ids = await select_events(session, selection)
    if not ids:
        return ids, None
    job = await actions.start_job(
        session=session,
        job_type="ai_processing",
        params={"event_ids": ids, "force": selection.force},
        actor=actor,
        tenant_id=tenant_id,
        is_admin=is_admin,
    )
    return ids, job
