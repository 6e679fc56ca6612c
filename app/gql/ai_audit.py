"""Seed 002's AI audit in GraphQL: prompt configurations (current, history, update, restore,
import, tests through the analyzer's production path) and the audit of the pipeline's
decisions (an event's decisions and evaluation, statistics, the model leaderboard)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from app.auth import Permission
from app.db.models import PromptVersion
from app.gql.context import Info
from app.gql.permissions import CanOperatePlatform, CanReadPlatform
from app.services.audit import evaluations, reports
from app.services.errors import DomainError, NotFound
from app.services.prompts import testing, versions
from app.services.prompts.versions import PromptConfig
from app.uow import read_only, unit_of_work
from app.waiting import submit_and_wait

TEST_WAIT_SECONDS = 120.0


@strawberry.type
class Prompt:
    model: str
    version: int
    system_prompt: str
    temperature: float
    max_tokens: int
    description: str | None
    author: str
    restored_from: int | None
    created_at: datetime

    @classmethod
    def of(cls, p: PromptVersion) -> Prompt:
        return cls(
            model=p.model,
            version=p.version,
            system_prompt=p.system_prompt,
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            description=p.description,
            author=p.author,
            restored_from=p.restored_from,
            created_at=p.created_at,
        )


@strawberry.type
class PromptHistory:
    model: str
    versions: list[Prompt]
    total: int


@strawberry.type
class PromptError:
    field: str | None
    code: str
    message: str


def _errors(exc: DomainError) -> list[PromptError]:
    return [PromptError(field=exc.field, code=exc.code, message=exc.message)]


@strawberry.type
class PromptPayload:
    prompt: Prompt | None
    previous_version: int | None
    errors: list[PromptError]


@strawberry.type
class ImportPayload:
    imported: list[str]
    skipped: list[str]
    errors: JSON


@strawberry.type
class Assessment:
    risk_score: int
    risk_level: str
    summary: str
    reasoning: str
    latency_ms: float | None
    tokens_used: int | None


@strawberry.type
class PromptTestPayload:
    current: Assessment | None
    modified: Assessment | None
    risk_score_diff: int | None
    latency_diff_ms: float | None
    pending_task_ids: list[str]
    errors: list[PromptError]


def _assessment(result: dict[str, Any] | None) -> Assessment | None:
    if result is None:
        return None
    return Assessment(
        risk_score=int(result["risk_score"]),
        risk_level=str(result["risk_level"]),
        summary=str(result["summary"]),
        reasoning=str(result.get("reasoning", "")),
        latency_ms=result.get("latency_ms"),
        tokens_used=result.get("tokens_used"),
    )


@strawberry.type
class PromptQueries:
    @strawberry.field(permission_classes=[CanReadPlatform], description="A model's current prompt.")
    async def prompt(self, info: Info, model: str) -> Prompt | None:
        async with read_only(info.context.state.sessionmaker) as session:
            found = await versions.current(session, model)
        return Prompt.of(found) if found else None

    @strawberry.field(
        permission_classes=[CanReadPlatform], description="Every model's current prompt."
    )
    async def prompts(self, info: Info) -> list[Prompt]:
        async with read_only(info.context.state.sessionmaker) as session:
            found = await versions.all_current(session)
        return [Prompt.of(p) for p in found.values()]

    @strawberry.field(permission_classes=[CanReadPlatform], description="Newest first.")
    async def prompt_history(
        self, info: Info, model: str, limit: int = 50, offset: int = 0
    ) -> PromptHistory:
        async with read_only(info.context.state.sessionmaker) as session:
            rows, total = await versions.history(
                session=session,
                model=model,
                limit=max(1, min(limit, 100)),
                offset=max(0, offset),
            )
        return PromptHistory(model=model, versions=[Prompt.of(p) for p in rows], total=total)


@strawberry.type
class PromptMutations:
    @strawberry.mutation(permission_classes=[CanOperatePlatform], description="Appends a version.")
    async def update_prompt(
        self,
        info: Info,
        model: str,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        description: str | None = None,
    ) -> PromptPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row, previous = await versions.update(
                    session=session,
                    model=model,
                    system_prompt=system_prompt,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    description=description,
                    author=ctx.principal.subject if ctx.principal else "?",
                )
        except DomainError as exc:
            return PromptPayload(prompt=None, previous_version=None, errors=_errors(exc))
        return PromptPayload(prompt=Prompt.of(row), previous_version=previous, errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform], description="A new version copying one."
    )
    async def restore_prompt(
        self, info: Info, model: str, version: int, description: str | None = None
    ) -> PromptPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await versions.restore(
                    session=session,
                    model=model,
                    version=version,
                    author=ctx.principal.subject if ctx.principal else "?",
                    description=description,
                )
        except DomainError as exc:
            return PromptPayload(prompt=None, previous_version=None, errors=_errors(exc))
        return PromptPayload(prompt=Prompt.of(row), previous_version=row.version - 1, errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Import an export document; `overwrite` needs an admin role.",
    )
    async def import_prompts(
        self, info: Info, document: JSON, overwrite: bool = False
    ) -> ImportPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                result = await versions.import_(
                    session=session,
                    document=document,
                    overwrite=overwrite,
                    author=ctx.principal.subject if ctx.principal else "?",
                    may_overwrite=bool(ctx.principal and ctx.principal.can(Permission.ADMIN)),
                )
        except DomainError as exc:
            return ImportPayload(
                imported=[],
                skipped=[],
                errors=cast(JSON, [{"field": exc.field, "error": exc.message}]),
            )
        return ImportPayload(
            imported=result.imported, skipped=result.skipped, errors=cast(JSON, result.errors)
        )

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="An event analysed with the current and a candidate configuration.",
    )
    async def test_prompt(
        self,
        info: Info,
        model: str,
        event_id: int,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> PromptTestPayload:
        ctx = info.context

        async def submit(session: Any) -> Any:
            now = await versions.require_current(session, model)
            candidate = PromptConfig(
                system_prompt=system_prompt or now.system_prompt,
                temperature=temperature if temperature is not None else now.temperature,
                max_tokens=max_tokens or now.max_tokens,
            )
            runs = await testing.current_and_candidate(session, model, candidate)
            return await testing.start(
                session=session,
                model=model,
                event_id=event_id,
                candidates=runs,
                actor=ctx.principal.subject if ctx.principal else "?",
            )

        try:
            runs = await submit_and_wait(ctx.state, submit, TEST_WAIT_SECONDS)
        except DomainError as exc:
            return PromptTestPayload(
                current=None,
                modified=None,
                risk_score_diff=None,
                latency_diff_ms=None,
                pending_task_ids=[],
                errors=_errors(exc),
            )
        a, b = (testing.outcome(t) for t in runs)
        latency = (
            round(float(b.get("latency_ms") or 0) - float(a.get("latency_ms") or 0), 1)
            if a and b
            else None
        )
        pending = [str(t.id) for t in runs if t.status not in ("COMPLETED", "FAILED", "CANCELLED")]
        return PromptTestPayload(
            current=_assessment(a),
            modified=_assessment(b),
            risk_score_diff=int(b["risk_score"]) - int(a["risk_score"]) if a and b else None,
            latency_diff_ms=latency,
            pending_task_ids=pending,
            errors=[],
        )


# --- the audit of the pipeline's decisions --------------------------------------------------


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
class LeaderboardEntry:
    model_name: str
    contribution_rate: float
    total_events: int
    avg_quality_score: float | None
    quality_correlation: float | None


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


def _bad(exc: DomainError) -> GraphQLError:
    code = "NOT_FOUND" if isinstance(exc, NotFound) else "BAD_USER_INPUT"
    return GraphQLError(exc.message, extensions={"code": code, "field": exc.field})


@strawberry.type
class EvaluatePayload:
    audit: EventAudit | None
    errors: list[PromptError]


async def _event_audit(info: Info, event_id: int) -> EventAudit | None:
    async with read_only(info.context.state.sessionmaker) as session:
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
        decisions=[
            Decision(
                stage=d.stage,
                model=d.model,
                prompt_version=d.prompt_version,
                input_summary=d.input_summary,
                output=cast(JSON, d.output),
                input_tokens=d.input_tokens,
                output_tokens=d.output_tokens,
                latency_ms=d.latency_ms,
                created_at=d.created_at,
            )
            for d in decisions
        ],
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
            async with read_only(info.context.state.sessionmaker) as session:
                s = await reports.stats(session=session, days=days, camera_id=camera_id)
        except DomainError as exc:
            raise _bad(exc) from None
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
            async with read_only(info.context.state.sessionmaker) as session:
                entries, _ = await reports.leaderboard(session=session, days=days)
        except DomainError as exc:
            raise _bad(exc) from None
        return [LeaderboardEntry(**e.__dict__) for e in entries]


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
        async with read_only(ctx.state.sessionmaker) as session:
            try:
                await evaluations.material(session, event_id)
            except NotFound as exc:
                # a missing event is a payload error, like every mutation's expected failures
                return EvaluatePayload(audit=None, errors=_errors(exc))
            existing = await evaluations.latest(session, event_id)
        if existing is None or force:

            async def submit(session: Any) -> Any:
                return [
                    await evaluations.start(
                        session=session,
                        event_id=event_id,
                        actor=ctx.principal.subject if ctx.principal else "?",
                    )
                ]

            await submit_and_wait(ctx.state, submit, TEST_WAIT_SECONDS)
        return EvaluatePayload(audit=await _event_audit(info, event_id), errors=[])
