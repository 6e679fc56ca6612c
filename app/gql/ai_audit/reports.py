"""Seed 002's audit of the pipeline's decisions in GraphQL: an event's decisions and evaluation,
statistics, the model leaderboard, the judges' recommendations, and evaluation (one event or a
batch selected by ids, camera and dates)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.edge.waiting import submit_and_wait
from app.gql.ai_audit.prompts import TEST_WAIT_SECONDS, PromptError
from app.gql.context import Info
from app.gql.errors import CaptureErrors, failure, raised
from app.gql.forward import forward
from app.gql.permissions import CanOperatePlatform, CanReadPlatform
from app.kernel.errors import DomainError, NotFound
from app.services.audit import batch, evaluations, reports


@strawberry.type
class Decision:
    stage: str
    model: str
    prompt_version: int | None
    input_summary: str
    output: JSON
    input_tokens: int
    output_tokens: int
    latency_ms: float | None
    created_at: datetime


@strawberry.type
class QualityScores:
    coherence: float
    relevance: float
    consistency: float


@strawberry.type
class Share:
    model: str
    share: float


@strawberry.type
class Suggestion:
    model: str
    category: str
    suggestion: str


@strawberry.type
class EventAudit:
    event_id: int
    audit_id: int | None
    judge_model: str | None
    quality_scores: QualityScores | None
    model_contributions: list[Share]
    prompt_suggestions: list[Suggestion]
    evaluated_at: datetime | None
    decisions: list[Decision]


@strawberry.type
class LeaderboardEntry(reports.LeaderboardEntry):
    """A model on the leaderboard: its fields are the report's (app/services/audit/reports.py)."""


@strawberry.type
class ModelAuditStats:
    model: str
    events: int
    decisions: int
    avg_latency_ms: float | None
    contribution_rate: float | None


@strawberry.type
class AuditStats:
    period_days: int
    total_events: int
    events_today: int
    by_model: list[ModelAuditStats]
    avg_coherence: float | None
    avg_relevance: float | None
    avg_consistency: float | None
    total_input_tokens: float
    total_output_tokens: float
    today_input_tokens: float
    today_output_tokens: float


@strawberry.type
class Recommendation(reports.Recommendation):
    """A grouped suggestion: its fields are the report's (app/services/audit/reports.py)."""


@strawberry.type
class Recommendations:
    recommendations: list[Recommendation]
    period_days: int
    total_events_analyzed: int


@strawberry.type
class BatchAuditPayload:
    queued_count: int
    job_id: str | None = strawberry.field(description="Follow it with `job(id:)`.")
    errors: list[PromptError]


@strawberry.type
class EvaluatePayload:
    audit: EventAudit | None
    errors: list[PromptError]


async def _event_audit(info: Info, event_id: int) -> EventAudit | None:
    async with info.context.reading() as session:
        try:
            event, decisions = await evaluations.material(session, event_id)
        except NotFound:
            return None
        found = await evaluations.latest(session, event_id)
    return EventAudit(
        event_id=event.id,
        audit_id=found.id if found else None,
        judge_model=found.judge_model if found else None,
        quality_scores=QualityScores(**{d: found.quality_scores[d] for d in evaluations.DIMENSIONS})
        if found
        else None,
        model_contributions=[Share(model=m, share=v) for m, v in found.model_contributions.items()]
        if found
        else [],
        prompt_suggestions=[
            Suggestion(model=s["model"], category=s["category"], suggestion=s["suggestion"])
            for s in (found.prompt_suggestions if found else [])
        ],
        evaluated_at=found.created_at if found else None,
        decisions=[forward(Decision, d) for d in decisions],
    )


@strawberry.type
class AuditQueries:
    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="An event's decisions and evaluation, or null.",
    )
    async def event_audit(self, info: Info, event_id: int) -> EventAudit | None:
        return await _event_audit(info, event_id)

    @strawberry.field(permission_classes=[CanReadPlatform])
    async def audit_stats(
        self, info: Info, days: int = 7, camera_id: str | None = None
    ) -> AuditStats:
        try:
            async with info.context.reading() as session:
                s = await reports.stats(session=session, days=days, camera_id=camera_id)
        except DomainError as exc:
            raise raised(exc) from None
        return AuditStats(
            period_days=days,
            total_events=s.total_events,
            events_today=s.events_today,
            by_model=[ModelAuditStats(model=m, **v) for m, v in s.by_model.items()],
            avg_coherence=s.quality_scores.get("avg_coherence"),
            avg_relevance=s.quality_scores.get("avg_relevance"),
            avg_consistency=s.quality_scores.get("avg_consistency"),
            total_input_tokens=s.token_usage["total_input"],
            total_output_tokens=s.token_usage["total_output"],
            today_input_tokens=s.token_usage["today_input"],
            today_output_tokens=s.token_usage["today_output"],
        )

    @strawberry.field(permission_classes=[CanReadPlatform], description="Models by contribution.")
    async def model_leaderboard(self, info: Info, days: int = 7) -> list[LeaderboardEntry]:
        try:
            async with info.context.reading() as session:
                entries, _ = await reports.leaderboard(session=session, days=days)
        except DomainError as exc:
            raise raised(exc) from None
        return [LeaderboardEntry(**e.__dict__) for e in entries]

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="The judges' prompt suggestions grouped, most affected events first.",
    )
    async def audit_recommendations(self, info: Info, days: int = 7) -> Recommendations:
        try:
            async with info.context.reading() as session:
                found, total = await reports.recommendations(session=session, days=days)
        except DomainError as exc:
            raise raised(exc) from None
        return Recommendations(
            recommendations=[Recommendation(**r.__dict__) for r in found],
            period_days=days,
            total_events_analyzed=total,
        )


@strawberry.type
class AuditMutations:
    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Run the LLM judge on an event (once, unless `force`).",
    )
    async def evaluate_event(
        self, info: Info, event_id: int, force: bool = False
    ) -> EvaluatePayload:
        ctx = info.context
        async with ctx.reading() as session:
            try:
                await evaluations.material(session, event_id)
            except NotFound as exc:
                # a missing event is a payload error, like every mutation's expected failures
                return failure(EvaluatePayload, exc)
            existing = await evaluations.latest(session, event_id)
        if existing is None or force:

            async def submit(session: Any) -> Any:
                return [
                    await evaluations.start(session=session, event_id=event_id, actor=ctx.actor)
                ]

            await submit_and_wait(ctx.state, submit, TEST_WAIT_SECONDS)
        return EvaluatePayload(audit=await _event_audit(info, event_id), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Queue the events selected by ids, camera and dates (those already"
        " evaluated left out unless `force`) as one ai_processing job.",
        extensions=[CaptureErrors()],
    )
    async def batch_audit(
        self,
        info: Info,
        event_ids: list[int] | None = None,
        camera_id: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        force: bool = False,
    ) -> BatchAuditPayload:
        ctx = info.context
        selection = batch.Selection(
            event_ids=event_ids,
            camera_id=camera_id,
            start_date=start_date,
            end_date=end_date,
            force=force,
        )
        async with ctx.writing() as session:
            ids, job = await batch.queue(
                session=session,
                selection=selection,
                actor=ctx.actor,
                tenant_id=ctx.tenant_id,
                is_admin=ctx.is_admin,
            )
        return BatchAuditPayload(
            queued_count=len(ids), job_id=str(job.id) if job else None, errors=[]
        )
