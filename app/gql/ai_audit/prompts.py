"""Seed 002's prompt configurations in GraphQL: current, history (one model's or every
model's), the export document, update, restore, import, and tests through the analyzer's
production path."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.edge.waiting import submit_and_wait
from app.gql.context import Info
from app.gql.errors import CaptureErrors, user_error
from app.gql.forward import Forwards
from app.gql.permissions import CanOperatePlatform, CanReadPlatform
from app.kernel.bounds import HISTORY_LIMIT_MAX
from app.kernel.errors import DomainError
from app.services.prompts import testing, versions
from app.services.prompts.versions import PromptConfig

TEST_WAIT_SECONDS = 120.0


@strawberry.type
class Prompt(Forwards):
    model: str
    version: int
    system_prompt: str
    temperature: float
    max_tokens: int
    description: str | None
    author: str
    restored_from: int | None
    created_at: datetime


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
        async with info.context.reading() as session:
            found = await versions.current(session, model)
        return Prompt.of(found) if found else None

    @strawberry.field(
        permission_classes=[CanReadPlatform], description="Every model's current prompt."
    )
    async def prompts(self, info: Info) -> list[Prompt]:
        async with info.context.reading() as session:
            found = await versions.all_current(session)
        return [Prompt.of(p) for p in found.values()]

    @strawberry.field(permission_classes=[CanReadPlatform], description="Newest first.")
    async def prompt_history(
        self, info: Info, model: str, limit: int = 50, offset: int = 0
    ) -> PromptHistory:
        async with info.context.reading() as session:
            rows, total = await versions.history(
                session=session,
                model=model,
                limit=max(1, min(limit, HISTORY_LIMIT_MAX)),
                offset=max(0, offset),
            )
        return PromptHistory(model=model, versions=[Prompt.of(p) for p in rows], total=total)

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description=f"The latest `limit` versions (1-{HISTORY_LIMIT_MAX}) of every model, newest"
        " first.",
    )
    async def prompt_histories(self, info: Info, limit: int = 10) -> list[PromptHistory]:
        if not 1 <= limit <= HISTORY_LIMIT_MAX:
            raise user_error(f"limit must be between 1 and {HISTORY_LIMIT_MAX}", field="limit")
        async with info.context.reading() as session:
            found = await versions.history_all(session=session, limit=limit)
            totals = await versions.version_counts(session)
        return [
            PromptHistory(model=m, versions=[Prompt.of(p) for p in rows], total=totals.get(m, 0))
            for m, rows in found.items()
        ]

    @strawberry.field(
        permission_classes=[CanReadPlatform],
        description="The export document (REST's GET /api/ai-audit/prompts/export): current"
        " configurations and every version; `importPrompts` takes it back.",
    )
    async def prompt_export(self, info: Info) -> JSON:
        async with info.context.reading() as session:
            return cast(JSON, await versions.export(session))


@strawberry.type
class PromptMutations:
    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Appends a version.",
        extensions=[CaptureErrors()],
    )
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
        async with ctx.writing() as session:
            row, previous = await versions.update(
                session=session,
                model=model,
                system_prompt=system_prompt,
                temperature=temperature,
                max_tokens=max_tokens,
                description=description,
                author=ctx.actor,
            )
        return PromptPayload(prompt=Prompt.of(row), previous_version=previous, errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="A new version copying one.",
        extensions=[CaptureErrors()],
    )
    async def restore_prompt(
        self, info: Info, model: str, version: int, description: str | None = None
    ) -> PromptPayload:
        ctx = info.context
        async with ctx.writing() as session:
            row = await versions.restore(
                session=session,
                model=model,
                version=version,
                author=ctx.actor,
                description=description,
            )
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
            async with ctx.writing() as session:
                result = await versions.import_(
                    session=session,
                    document=document,
                    overwrite=overwrite,
                    author=ctx.actor,
                    may_overwrite=ctx.is_admin,
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
        extensions=[CaptureErrors()],
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
                actor=ctx.actor,
            )

        runs = await submit_and_wait(ctx.state, submit, TEST_WAIT_SECONDS)
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
