"""Self-evaluation of a security event by an LLM judge: what the judge reads (the event and
the decisions behind it), how its verdict is read and stored, and evaluating idempotently
(once per event unless forced)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AuditRecord, Evaluation, SecurityEvent, Task
from app.kernel import effects
from app.kernel.bounds import AUDIT_DAYS_MAX, check_within
from app.services.audit import records
from app.services.pipeline import queries
from app.services.pipeline.config import config_of
from app.services.tasks import reactions
from app.services.tasks import submissions as task_submissions
from app.services.tasks.lifecycle import TaskStatus
from app.services.tasks.specs import TaskSpec

DIMENSIONS = ("coherence", "relevance", "consistency")
# the share of an event's decision each stage accounts for, before the judge says otherwise
STAGE_WEIGHT = {"analysis": 0.6, "enrichment": 0.25, "detection": 0.15}
CATEGORIES = ("context", "specificity", "format", "calibration", "other")
JUDGE_PROMPT = (
    "You review the decisions of a security camera AI pipeline. Given a security event (its "
    "risk score, summary and reasoning) and the detections and descriptions it was based on, "
    "score the event's assessment from 0 to 1 for coherence (the reasoning supports the "
    "score), relevance (it addresses what was seen) and consistency (it agrees with the "
    "detections), say how much each model contributed to the decision (shares summing to 1), "
    "and suggest prompt improvements. Answer with one JSON object: "
    '{"quality_scores": {"coherence": 0-1, "relevance": 0-1, "consistency": 0-1}, '
    '"model_contributions": {"<model>": 0-1}, '
    '"prompt_suggestions": [{"model": "...", "category": "context|specificity|format|'
    'calibration|other", "suggestion": "..."}]}'
)


class UnreadableVerdict(ValueError):
    pass


@dataclass
class Verdict:
    quality_scores: dict[str, float]
    model_contributions: dict[str, float]
    prompt_suggestions: list[dict[str, Any]] = field(default_factory=list)


def _event_view(event: SecurityEvent, decisions: list[AuditRecord]) -> dict[str, Any]:
    return {
        "event": {
            "id": event.id,
            "camera_id": event.camera_id,
            "risk_score": event.risk_score,
            "risk_level": event.risk_level,
            "summary": event.summary,
            "reasoning": event.reasoning,
        },
        "decisions": [
            {"stage": d.stage, "model": d.model, "input": d.input_summary, "output": d.output}
            for d in decisions
        ],
    }


def judge_messages(event: SecurityEvent, decisions: list[AuditRecord]) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": JUDGE_PROMPT},
        {"role": "user", "content": json.dumps(_event_view(event, decisions), default=str)},
    ]


def base_contributions(decisions: list[AuditRecord]) -> dict[str, float]:
    """Each stage's weight shared among the models that took part in it."""
    by_stage: dict[str, list[str]] = {}
    for d in decisions:
        by_stage.setdefault(d.stage, []).append(d.model)
    raw: dict[str, float] = {}
    for stage, models in by_stage.items():
        for m in models:
            raw[m] = raw.get(m, 0.0) + STAGE_WEIGHT.get(stage, 0.1) / len(models)
    total = sum(raw.values()) or 1.0
    return {m: round(v / total, 4) for m, v in sorted(raw.items())}


def simulated_verdict(event: SecurityEvent, decisions: list[AuditRecord]) -> dict[str, Any]:
    """What the simulated provider's judge answers: derived from the event, deterministic."""
    described = [d for d in decisions if d.stage == "enrichment" and d.output.get("description")]
    detections = [d for d in decisions if d.stage == "detection"]
    coverage = len(described) / len(detections) if detections else 0.5
    reasoned = min(1.0, len(event.reasoning) / 200)
    scores = {
        "coherence": round(0.6 + 0.4 * reasoned, 3),
        "relevance": round(0.55 + 0.4 * coverage, 3),
        "consistency": round(0.9 if event.detection_count == len(detections) else 0.7, 3),
    }
    suggestions = []
    analysis = next((d.model for d in decisions if d.stage == "analysis"), None)
    if analysis and scores["relevance"] < 0.8:
        suggestions.append(
            {
                "model": analysis,
                "category": "context",
                "suggestion": "Ask for the time of day and the camera's location in the analysis",
            }
        )
    if described and scores["coherence"] < 0.9:
        suggestions.append(
            {
                "model": described[0].model,
                "category": "specificity",
                "suggestion": "Ask for clothing colours and carried objects in descriptions",
            }
        )
    return {
        "quality_scores": scores,
        "model_contributions": base_contributions(decisions),
        "prompt_suggestions": suggestions,
    }


def parse_verdict(content: str, decisions: list[AuditRecord]) -> Verdict:
    """The judge's JSON answer, checked: scores clipped to 0..1, contributions of the models
    that took part normalised to 1 (the stage weights when it gives none), suggestions kept
    when they name a model and say something."""
    try:
        start, end = content.index("{"), content.rindex("}") + 1
        data = json.loads(content[start:end])
    except ValueError as exc:
        raise UnreadableVerdict(f"the judge's answer is not JSON: {content[:200]!r}") from exc
    raw = data.get("quality_scores")
    if not isinstance(raw, dict):
        raise UnreadableVerdict("the judge's answer has no quality_scores")
    scores = {}
    for dim in DIMENSIONS:
        value = raw.get(dim)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise UnreadableVerdict(f"the judge gave no {dim} score")
        scores[dim] = round(min(1.0, max(0.0, float(value))), 4)
    models = {d.model for d in decisions}
    given = data.get("model_contributions")
    shares = {
        m: float(v)
        for m, v in (given.items() if isinstance(given, dict) else [])
        if m in models and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
    }
    total = sum(shares.values())
    contributions = (
        {m: round(v / total, 4) for m, v in sorted(shares.items())}
        if total > 0
        else base_contributions(decisions)
    )
    suggestions = []
    for s in data.get("prompt_suggestions") or []:
        if isinstance(s, dict) and isinstance(s.get("suggestion"), str) and s["suggestion"]:
            category = s.get("category") if s.get("category") in CATEGORIES else "other"
            suggestions.append(
                {
                    "model": str(s.get("model") or ""),
                    "category": category,
                    "suggestion": s["suggestion"][:500],
                }
            )
    return Verdict(scores, contributions, suggestions[:10])


async def latest(session: AsyncSession, event_id: int) -> Evaluation | None:
    stmt = (
        select(Evaluation)
        .where(Evaluation.event_id == event_id)
        .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def material(session: AsyncSession, event_id: int) -> tuple[SecurityEvent, list[AuditRecord]]:
    event = await queries.get_event(session=session, event_id=event_id)
    return event, await records.for_event(session, event.batch_id)


async def evaluated_since(session: AsyncSession, event_ids: list[int], since: Any) -> set[int]:
    """Which of these events have an evaluation made at or after `since` (a job's checkpoint:
    what an earlier attempt of the job already judged)."""
    if not event_ids:
        return set()
    rows = await session.execute(
        select(Evaluation.event_id).where(
            Evaluation.event_id.in_(event_ids), Evaluation.created_at >= since
        )
    )
    return {int(i) for i in rows.scalars()}


async def store(
    session: AsyncSession,
    *,
    event: SecurityEvent,
    verdict: Verdict,
    judge_model: str,
    task_id: Any = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    latency_ms: float | None = None,
) -> None:
    stmt = insert(Evaluation).values(
        event_id=event.id,
        camera_id=event.camera_id,
        task_id=task_id,
        judge_model=judge_model,
        quality_scores=verdict.quality_scores,
        model_contributions=verdict.model_contributions,
        prompt_suggestions=verdict.prompt_suggestions,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
    )
    if task_id is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["task_id"])
    await session.execute(stmt)


async def start(*, session: AsyncSession, event_id: int, actor: str) -> Task:
    """An evaluation task for the event (on the analysis queue, through the LLM semaphore)."""
    config = config_of(session)
    event = await queries.get_event(session=session, event_id=event_id)
    return await task_submissions.submit_task(
        session=session,
        spec=TaskSpec(
            task_type="evaluation",
            queue=config.analysis_queue,
            priority=80,
            input={"event_id": event.id},
            metadata={"requested_by": actor},
            origin_instance="ai-audit",
            max_retries=2,
            system=True,
        ),
        defaults=config.task_defaults,
    )


# The task types `react` watches (registered: a plain attempt write must not bypass it).
WATCHED_TYPES = frozenset({"evaluation"})


async def react(session: AsyncSession) -> None:
    """Evaluation tasks this transaction completed: each verdict becomes the event's
    evaluation (once: the task id is unique among evaluations)."""
    for e in effects.peek(session):
        if isinstance(e, effects.TaskChanged):
            snap = e.snapshot
            if (
                snap.get("task_type") in WATCHED_TYPES
                and snap.get("status") == TaskStatus.COMPLETED
            ):
                await _evaluated(session, snap)


async def _evaluated(session: AsyncSession, snap: dict[str, Any]) -> None:
    result = snap.get("result") or {}
    event = await session.get(SecurityEvent, int((snap.get("input") or {})["event_id"]))
    if event is None:
        return
    await store(
        session,
        event=event,
        verdict=Verdict(
            result["quality_scores"], result["model_contributions"], result["prompt_suggestions"]
        ),
        judge_model=str(result.get("judge_model") or snap.get("model") or ""),
        task_id=snap["id"],
        input_tokens=int(snap.get("input_tokens") or 0),
        output_tokens=int(snap.get("output_tokens") or 0),
        latency_ms=snap.get("latency_ms"),
    )


def check_days(days: int) -> None:
    check_within(days, 1, AUDIT_DAYS_MAX, field="days")


def register() -> None:
    """Store each verdict in the transaction that completes its evaluation task
    (app/edge/domains.py)."""
    reactions.register("audit.evaluations", react, task_types=WATCHED_TYPES)
