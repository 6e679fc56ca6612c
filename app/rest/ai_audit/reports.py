"""Seed 002's audit of the pipeline's decisions over REST: an event's decisions and
evaluation, batch audits, the leaderboard, recommendations and statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool

from app.auth.principals import Permission
from app.db.models import AuditRecord, Task
from app.edge.state import AppState
from app.edge.uow import read_only
from app.kernel.bounds import AUDIT_DAYS_MAX
from app.rest.ai_audit.common import KNOWN, refuse, waited
from app.rest.deps import PlatformOperator, PlatformReader, State
from app.rest.params import IsoDateTime, RowId, RowIdPath
from app.rest.refusals import reading, writing
from app.rest.shapes import columns
from app.services.audit import batch, evaluations, reports

router = APIRouter(prefix="/api/ai-audit", tags=["AI Audit"])
Days = Annotated[
    int,
    Query(ge=1, le=AUDIT_DAYS_MAX, description=f"Days to include (1-{AUDIT_DAYS_MAX})"),
]
# what an AI decision's record shows (beside its task's id and when it was made)
DECISION = (
    "stage",
    "model",
    "prompt_version",
    "input_summary",
    "output",
    "input_tokens",
    "output_tokens",
    "latency_ms",
)


def decision_out(d: AuditRecord) -> dict[str, Any]:
    return {**columns(d, *DECISION), "task_id": str(d.task_id), "created_at": d.created_at}


async def _event_audit(state: AppState, event_id: int) -> dict[str, Any]:
    async with reading(state, refuse) as session:
        event, decisions = await evaluations.material(session, event_id)
        found = await evaluations.latest(session, event_id)
    return {
        "event_id": event.id,
        "audit_id": found.id if found else None,
        "model_contributions": found.model_contributions if found else None,
        "quality_scores": found.quality_scores if found else None,
        "prompt_suggestions": [s["suggestion"] for s in found.prompt_suggestions] if found else [],
        "suggestions": found.prompt_suggestions if found else [],
        "judge_model": found.judge_model if found else None,
        "created_at": found.created_at if found else None,
        "decisions": [decision_out(d) for d in decisions],
    }


EventId = RowIdPath


@router.get("/events/{event_id}", responses=KNOWN, summary="Get audit for specific event")
async def event_audit(event_id: EventId, state: State, principal: PlatformReader) -> Any:
    """The event's latest evaluation (null fields until it is evaluated) and every AI decision
    behind it: detections, enrichments and the analysis, with model, prompt version, tokens
    and latency."""
    return await _event_audit(state, event_id)


@router.post(
    "/events/{event_id}/evaluate", responses=KNOWN, summary="Trigger full event evaluation"
)
async def evaluate_event(
    event_id: EventId,
    state: State,
    principal: PlatformOperator,
    force: bool = False,
) -> Any:
    """Runs the LLM judge on the event (through the provider, like the analysis) unless it
    has an evaluation already; `force` evaluates again (both evaluations are kept)."""
    async with reading(state, refuse) as session:
        await evaluations.material(session, event_id)
        existing = await evaluations.latest(session, event_id)
    if existing is None or force:

        async def submit(session: Any) -> list[Task]:
            return [
                await evaluations.start(session=session, event_id=event_id, actor=principal.subject)
            ]

        runs = await waited(state, submit)
        if isinstance(runs, JSONResponse):
            return runs
    return await _event_audit(state, event_id)


class BatchIn(BaseModel):
    event_ids: list[RowId] | None = Field(None, max_length=batch.MAX_EVENTS)
    camera_id: Annotated[str, Field(max_length=255)] | None = None
    start_date: IsoDateTime | None = None
    end_date: IsoDateTime | None = None
    force: StrictBool = False


@router.post("/batch", status_code=202, summary="Trigger batch audit processing")
async def batch_audit(body: BatchIn, state: State, principal: PlatformOperator) -> Any:
    """Queues the matching events (by id, camera, dates; those already evaluated left out
    unless `force`) as one `ai_processing` job; `job_id` follows it under /api/jobs."""
    async with writing(state, refuse) as session:
        ids, job = await batch.queue(
            session=session,
            selection=batch.Selection(**body.model_dump()),
            actor=principal.subject,
            tenant_id=principal.tenant_id,
            is_admin=principal.can(Permission.ADMIN),
        )
    return {
        "queued_count": len(ids),
        "message": "Batch audit processing queued" if ids else "Nothing to evaluate",
        "job_id": str(job.id) if job else None,
    }


@router.get("/leaderboard", summary="Get model leaderboard by contribution")
async def leaderboard(state: State, principal: PlatformReader, days: Days = 7) -> Any:
    async with read_only(state.sessionmaker) as session:
        entries, total = await reports.leaderboard(session=session, days=days)
    return {"entries": [e.__dict__ for e in entries], "period_days": days, "total_events": total}


@router.get("/recommendations", summary="Get prompt improvement suggestions")
async def recommendations(state: State, principal: PlatformReader, days: Days = 7) -> Any:
    async with read_only(state.sessionmaker) as session:
        found, total = await reports.recommendations(session=session, days=days)
    return {
        "recommendations": [r.__dict__ for r in found],
        "period_days": days,
        "total_events_analyzed": total,
    }


@router.get("/stats", summary="Get aggregate audit statistics")
async def audit_stats(
    state: State,
    principal: PlatformReader,
    days: Days = 7,
    camera_id: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    async with read_only(state.sessionmaker) as session:
        s = await reports.stats(session=session, days=days, camera_id=camera_id)
    return {**s.__dict__, "period_days": days}
