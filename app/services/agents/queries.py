"""Reading agents: the list with 24-hour figures, and one agent's detail with hourly series,
all computed in SQL from the heartbeat samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent, AgentSample
from app.platform import clock
from app.services.agents.status import StatusRules, failing_checks, status_of

WINDOW = timedelta(hours=24)


@dataclass
class AgentFigures:
    requests: int = 0
    errors: int = 0
    avg_latency_ms: float | None = None
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    uptime_percent: float = 0.0

    @property
    def error_rate(self) -> float | None:
        return round(self.errors / self.requests * 100, 2) if self.requests else None


@dataclass
class AgentView:
    agent: Agent
    status: str
    figures: AgentFigures
    issues: list[dict[str, Any]] = field(default_factory=list)


def _latency_stats(since: datetime, agent_ids: Sequence[str]) -> Any:
    samples = (
        select(AgentSample.agent_id, func.unnest(AgentSample.latencies_ms).label("ms"))
        .where(AgentSample.agent_id.in_(list(agent_ids)), AgentSample.at >= since)
        .subquery()
    )
    return select(
        samples.c.agent_id,
        func.avg(samples.c.ms),
        func.percentile_cont(0.5).within_group(samples.c.ms),
        func.percentile_cont(0.95).within_group(samples.c.ms),
        func.percentile_cont(0.99).within_group(samples.c.ms),
    ).group_by(samples.c.agent_id)


async def figures_for(
    session: AsyncSession,
    agents: Sequence[Agent],
    *,
    now: datetime,
    rules: StatusRules,
    window: timedelta = WINDOW,
    uptime: bool = True,
) -> dict[str, AgentFigures]:
    ids = [a.id for a in agents]
    out = {i: AgentFigures() for i in ids}
    if not ids:
        return out
    since = now - window
    totals = (
        select(
            AgentSample.agent_id,
            func.sum(AgentSample.requests),
            func.sum(AgentSample.errors),
            func.sum(AgentSample.input_tokens),
            func.sum(AgentSample.output_tokens),
            # agents sending percentiles, not samples: request-weighted mean, worst p95/p99
            func.sum(AgentSample.latency_avg_ms * AgentSample.requests)
            / func.nullif(
                func.sum(AgentSample.requests).filter(AgentSample.latency_avg_ms.is_not(None)), 0
            ),
            func.max(AgentSample.latency_p95_ms),
            func.max(AgentSample.latency_p99_ms),
        )
        .where(AgentSample.agent_id.in_(ids), AgentSample.at >= since)
        .group_by(AgentSample.agent_id)
    )
    for agent_id, req, err, tin, tout, avg, p95, p99 in (await session.execute(totals)).all():
        f = out[agent_id]
        f.requests, f.errors = int(req or 0), int(err or 0)
        f.input_tokens, f.output_tokens = int(tin or 0), int(tout or 0)
        f.avg_latency_ms = None if avg is None else round(float(avg), 1)
        f.p95_latency_ms = None if p95 is None else round(float(p95), 1)
        f.p99_latency_ms = None if p99 is None else round(float(p99), 1)
    for agent_id, avg, p50, p95, p99 in (await session.execute(_latency_stats(since, ids))).all():
        f = out[agent_id]
        f.avg_latency_ms = round(float(avg), 1)
        f.p50_latency_ms, f.p95_latency_ms = round(float(p50), 1), round(float(p95), 1)
        f.p99_latency_ms = round(float(p99), 1)
    if not uptime:
        return out
    # uptime: the share of the window (or of the agent's life, if shorter) covered by beats
    # no further apart than the offline threshold
    gap = func.extract(
        "epoch",
        AgentSample.at
        - func.lag(AgentSample.at).over(partition_by=AgentSample.agent_id, order_by=AgentSample.at),
    )
    beats = (
        select(AgentSample.agent_id, gap.label("gap"))
        .where(AgentSample.agent_id.in_(ids), AgentSample.at >= since)
        .subquery()
    )
    covered = select(
        beats.c.agent_id,
        # the first beat in the window has no gap before it (LEAST would skip the null)
        func.sum(
            func.least(
                func.coalesce(beats.c.gap, 0.0),
                cast(literal_column(str(rules.offline_seconds)), Float),
            )
        ),
    ).group_by(beats.c.agent_id)
    covered_by = {a: float(s or 0.0) for a, s in (await session.execute(covered)).all()}
    for agent in agents:
        start = max(since, agent.first_seen_at)
        span = (now - start).total_seconds()
        tail = min((now - agent.last_heartbeat_at).total_seconds(), rules.offline_seconds)
        up = covered_by.get(agent.id, 0.0) + max(tail, 0.0)
        out[agent.id].uptime_percent = round(min(100.0, up / span * 100), 2) if span > 0 else 100.0
    return out


async def list_agents(
    *,
    session: AsyncSession,
    rules: StatusRules,
    status: str | None = None,
    type: str | None = None,
    tenant_id: str | None = None,
) -> list[AgentView]:
    stmt = select(Agent).order_by(Agent.id)
    if type is not None:
        stmt = stmt.where(Agent.type == type)
    if tenant_id is not None:
        stmt = stmt.where(Agent.tenant_id == tenant_id)
    agents = list((await session.execute(stmt)).scalars())
    now = clock.now()
    figures = await figures_for(session, agents, now=now, rules=rules)
    views = [view(a, figures[a.id], now=now, rules=rules) for a in agents]
    return [v for v in views if status is None or v.status == status]


AGENT_CHUNK = 200  # agents read (and their figures computed) per statement when paging


async def page_agents(
    *,
    session: AsyncSession,
    rules: StatusRules,
    limit: int,
    after: str | None = None,
    before: str | None = None,
    from_end: bool = False,
    status: str | None = None,
    type: str | None = None,
    tenant_id: str | None = None,
) -> tuple[list[AgentView], bool]:
    """A page of agents in id order, read from SQL by keyset in chunks (the status is derived
    from recent samples, so a status filter keeps reading chunks until the page is full);
    memory holds a chunk, never the fleet. Answers the page and whether more lie beyond it."""
    chunk = max(limit + 1, AGENT_CHUNK)
    found: list[AgentView] = []
    now = clock.now()
    while len(found) <= limit:
        stmt = select(Agent)
        if type is not None:
            stmt = stmt.where(Agent.type == type)
        if tenant_id is not None:
            stmt = stmt.where(Agent.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(Agent.id > after)
        if before is not None:
            stmt = stmt.where(Agent.id < before)
        stmt = stmt.order_by(Agent.id.desc() if from_end else Agent.id).limit(chunk)
        agents = list((await session.execute(stmt)).scalars())
        if not agents:
            break
        figures = await figures_for(session, agents, now=now, rules=rules)
        views = (view(a, figures[a.id], now=now, rules=rules) for a in agents)
        found += [v for v in views if status is None or v.status == status]
        if from_end:
            before = agents[-1].id
        else:
            after = agents[-1].id
        if len(agents) < chunk:
            break
    more = len(found) > limit
    found = found[:limit]
    if from_end:
        found.reverse()
    return found, more


async def count_agents(
    *,
    session: AsyncSession,
    rules: StatusRules,
    status: str | None = None,
    type: str | None = None,
    tenant_id: str | None = None,
) -> int:
    """How many agents match (one statement without a status filter; chunk by chunk with)."""
    if status is None:
        stmt = select(func.count()).select_from(Agent)
        if type is not None:
            stmt = stmt.where(Agent.type == type)
        if tenant_id is not None:
            stmt = stmt.where(Agent.tenant_id == tenant_id)
        return int((await session.execute(stmt)).scalar_one())
    total, after = 0, None
    while True:
        page, more = await page_agents(
            session=session,
            rules=rules,
            limit=AGENT_CHUNK,
            after=after,
            status=status,
            type=type,
            tenant_id=tenant_id,
        )
        total += len(page)
        if not more or not page:
            return total
        after = page[-1].agent.id


def view(agent: Agent, figures: AgentFigures, *, now: datetime, rules: StatusRules) -> AgentView:
    state = status_of(agent, now=now, error_rate=figures.error_rate, rules=rules)
    issues = list(agent.issues)
    for name in failing_checks(agent):
        issues.append({"type": "failing_check", "message": f"health check {name} failing"})
    if figures.error_rate is not None and figures.error_rate > rules.degraded_error_rate_percent:
        issues.append(
            {"type": "high_error_rate", "message": f"error rate {figures.error_rate}% in 24h"}
        )
    return AgentView(agent=agent, status=state, figures=figures, issues=issues)


@dataclass
class HourPoint:
    timestamp: datetime
    requests: int
    errors: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None


async def hourly(session: AsyncSession, agent_id: str, *, now: datetime) -> list[HourPoint]:
    hour = func.date_trunc("hour", AgentSample.at)
    ms = func.unnest(AgentSample.latencies_ms).label("ms")
    flat = (
        select(hour.label("h"), ms)
        .where(AgentSample.agent_id == agent_id, AgentSample.at >= now - WINDOW)
        .subquery()
    )
    latency = dict(
        (h, (a, p))
        for h, a, p in (
            await session.execute(
                select(
                    flat.c.h,
                    func.avg(flat.c.ms),
                    func.percentile_cont(0.95).within_group(flat.c.ms),
                ).group_by(flat.c.h)
            )
        ).all()
    )
    counts = (
        await session.execute(
            select(hour, func.sum(AgentSample.requests), func.sum(AgentSample.errors))
            .where(AgentSample.agent_id == agent_id, AgentSample.at >= now - WINDOW)
            .group_by(hour)
            .order_by(hour)
        )
    ).all()
    out = []
    for h, req, err in counts:
        avg, p95 = latency.get(h, (None, None))
        out.append(
            HourPoint(
                timestamp=h,
                requests=int(req or 0),
                errors=int(err or 0),
                avg_latency_ms=None if avg is None else round(float(avg), 1),
                p95_latency_ms=None if p95 is None else round(float(p95), 1),
            )
        )
    return out


async def tokens_by_model(session: AsyncSession, agent_id: str, *, now: datetime) -> dict[str, int]:
    rows = await session.execute(
        select(AgentSample.tokens_by_model).where(
            AgentSample.agent_id == agent_id, AgentSample.at >= now - WINDOW
        )
    )
    totals: dict[str, int] = {}
    for (by_model,) in rows.all():
        for model, value in (by_model or {}).items():
            n = (
                value
                if isinstance(value, int)
                else sum(int(v) for v in (value or {}).values() if isinstance(v, int))
            )
            totals[str(model)] = totals.get(str(model), 0) + n
    return totals


async def recent_errors(
    session: AsyncSession, agent_id: str, limit: int = 20
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(AgentSample.at, AgentSample.errors_by_type)
        .where(AgentSample.agent_id == agent_id, AgentSample.errors > 0)
        .order_by(AgentSample.at.desc())
        .limit(limit)
    )
    out = []
    for at, by_type in rows.all():
        for kind, n in (by_type or {"error": 1}).items():
            out.append(
                {
                    "timestamp": at,
                    "error": str(kind),
                    "message": f"{n} x {kind}",
                    "request_id": None,
                }
            )
    return out[:limit]
