"""Reports over the audit: the model leaderboard, prompt recommendations and statistics, each
over the last `days` days (1-90), computed from the stored records and evaluations."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import AuditRecord, Evaluation, SecurityEvent
from app.services.audit.evaluations import DIMENSIONS, check_days


async def _evaluations(
    session: AsyncSession, days: int, camera_id: str | None = None
) -> list[Evaluation]:
    """The latest evaluation of each event evaluated in the window."""
    check_days(days)
    since = utcnow() - timedelta(days=days)
    latest = (
        select(Evaluation.event_id, func.max(Evaluation.id).label("id"))
        .where(Evaluation.created_at >= since)
        .group_by(Evaluation.event_id)
        .subquery()
    )
    stmt = select(Evaluation).join(latest, Evaluation.id == latest.c.id)
    if camera_id is not None:
        stmt = stmt.where(Evaluation.camera_id == camera_id)
    return list((await session.execute(stmt)).scalars())


def _quality(e: Evaluation) -> float:
    return statistics.fmean(float(e.quality_scores.get(d, 0.0)) for d in DIMENSIONS)


def _correlation(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return round(statistics.correlation(xs, ys), 3)


@dataclass
class LeaderboardEntry:
    model_name: str
    contribution_rate: float
    total_events: int
    avg_quality_score: float | None
    quality_correlation: float | None


async def leaderboard(*, session: AsyncSession, days: int) -> tuple[list[LeaderboardEntry], int]:
    """Models by their mean contribution over the evaluated events (0 where absent), with the
    mean quality of the events they took part in and the correlation of their contribution
    with quality."""
    found = await _evaluations(session, days)
    models = sorted({m for e in found for m in e.model_contributions})
    entries = []
    for m in models:
        shares = [float(e.model_contributions.get(m, 0.0)) for e in found]
        quality = [_quality(e) for e in found]
        took_part = [q for q, s in zip(quality, shares, strict=True) if s > 0]
        entries.append(
            LeaderboardEntry(
                model_name=m,
                contribution_rate=round(statistics.fmean(shares), 4) if shares else 0.0,
                total_events=len(took_part),
                avg_quality_score=round(statistics.fmean(took_part), 4) if took_part else None,
                quality_correlation=_correlation(shares, quality),
            )
        )
    entries.sort(key=lambda x: -x.contribution_rate)
    return entries, len(found)


@dataclass
class Recommendation:
    model: str
    priority: str
    category: str
    suggestion: str
    impact_estimate: float
    affected_events: int


async def recommendations(*, session: AsyncSession, days: int) -> tuple[list[Recommendation], int]:
    """The judges' suggestions grouped (same model, category and text): how many events they
    concern, and an impact estimate: the quality those events lack, times their share."""
    found = await _evaluations(session, days)
    groups: dict[tuple[str, str, str], list[float]] = {}
    for e in found:
        for s in e.prompt_suggestions:
            key = (str(s.get("model", "")), str(s.get("category", "other")), str(s["suggestion"]))
            groups.setdefault(key, []).append(_quality(e))
    out = []
    for (model, category, text), qualities in groups.items():
        share = len(qualities) / len(found)
        impact = round((1 - statistics.fmean(qualities)) * share, 3)
        priority = "high" if impact >= 0.1 else "medium" if impact >= 0.03 else "low"
        out.append(Recommendation(model, priority, category, text, impact, len(qualities)))
    out.sort(key=lambda r: (-r.impact_estimate, -r.affected_events, r.model))
    return out, len(found)


@dataclass
class Stats:
    total_events: int
    events_today: int
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    quality_scores: dict[str, float | None] = field(default_factory=dict)
    token_usage: dict[str, int] = field(default_factory=dict)


async def stats(*, session: AsyncSession, days: int, camera_id: str | None) -> Stats:
    check_days(days)
    now = utcnow()
    since, today = (
        now - timedelta(days=days),
        now.replace(hour=0, minute=0, second=0, microsecond=0),
    )
    events = select(func.count(), func.count().filter(SecurityEvent.created_at >= today)).where(
        SecurityEvent.created_at >= since
    )
    decisions = (
        select(
            AuditRecord.model,
            func.count(func.distinct(AuditRecord.event_id)).filter(
                AuditRecord.event_id.is_not(None)
            ),
            func.count(),
            func.avg(AuditRecord.latency_ms),
        )
        .where(AuditRecord.created_at >= since)
        .group_by(AuditRecord.model)
    )
    tokens = select(
        func.coalesce(func.sum(AuditRecord.input_tokens), 0),
        func.coalesce(func.sum(AuditRecord.output_tokens), 0),
        func.coalesce(
            func.sum(AuditRecord.input_tokens).filter(AuditRecord.created_at >= today), 0
        ),
        func.coalesce(
            func.sum(AuditRecord.output_tokens).filter(AuditRecord.created_at >= today), 0
        ),
    ).where(AuditRecord.created_at >= since)
    if camera_id is not None:
        events = events.where(SecurityEvent.camera_id == camera_id)
        decisions = decisions.where(AuditRecord.camera_id == camera_id)
        tokens = tokens.where(AuditRecord.camera_id == camera_id)
    total, today_n = (await session.execute(events)).one()
    found = await _evaluations(session, days, camera_id)
    contributions: dict[str, list[float]] = {}
    for e in found:
        for m in {m for x in found for m in x.model_contributions}:
            contributions.setdefault(m, []).append(float(e.model_contributions.get(m, 0.0)))
    out = Stats(total_events=int(total), events_today=int(today_n))
    for model, analysed, n, latency in (await session.execute(decisions)).all():
        shares = contributions.get(model)
        out.by_model[model] = {
            "events": int(analysed) or int(n),
            "decisions": int(n),
            "avg_latency_ms": None if latency is None else round(float(latency), 1),
            "contribution_rate": round(statistics.fmean(shares), 4) if shares else None,
        }
    out.quality_scores = {
        f"avg_{d}": round(statistics.fmean(float(e.quality_scores.get(d, 0)) for e in found), 4)
        if found
        else None
        for d in DIMENSIONS
    }
    tin, tout, din, dout = (await session.execute(tokens)).one()
    out.token_usage = {
        "total_input": int(tin),
        "total_output": int(tout),
        "today_input": int(din),
        "today_output": int(dout),
    }
    return out
