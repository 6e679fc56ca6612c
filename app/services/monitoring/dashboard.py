"""The monitoring dashboard: fleet status, request figures and costs over a period, open
alerts and the top issues, for the installation or one tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert
from app.kernel.errors import InvalidInput
from app.platform import clock
from app.services.agents import queries
from app.services.llm.pricing import cost_usd
from app.services.monitoring import metrics
from app.services.monitoring.config import config_of

PERIODS = ("1h", "24h", "7d")
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
TOP_ISSUES = 10

# tokens_by_model values are {"input": n, "output": n} or a bare total (priced as input)
_TOKENS_BY_MODEL = text(
    """
SELECT t.key,
       sum(CASE WHEN jsonb_typeof(t.value) = 'number' THEN (t.value)::numeric
                ELSE coalesce((t.value->>'input')::numeric, 0) END),
       sum(CASE WHEN jsonb_typeof(t.value) = 'object'
                THEN coalesce((t.value->>'output')::numeric, 0) ELSE 0 END)
FROM agent_samples s, jsonb_each(s.tokens_by_model) AS t
WHERE s.at >= :start AND s.at <= :end
  AND jsonb_typeof(t.value) IN ('number', 'object')
  AND (CAST(:tenant AS text) IS NULL
       OR s.agent_id IN (SELECT id FROM agents WHERE tenant_id = :tenant))
GROUP BY t.key ORDER BY t.key
"""
)


@dataclass
class ModelCost:
    model: str
    input_tokens: int
    output_tokens: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Dashboard:
    generated_at: datetime
    period: str
    statuses: dict[str, int]
    health_score: int
    report: metrics.Report
    costs: list[ModelCost]
    active_alerts: int
    top_issues: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_agents(self) -> int:
        return sum(self.statuses.values())


async def dashboard(
    *,
    session: AsyncSession,
    period: str,
    tenant_id: str | None,
    prices: dict[str, dict[str, float]],
) -> Dashboard:
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
    report = await metrics.report(
        session, period=period, granularity=None, scope=metrics.Scope(tenant_id=tenant_id)
    )
    views = await queries.list_agents(
        session=session, rules=config_of(session).status, tenant_id=tenant_id
    )
    statuses = {s: 0 for s in ("healthy", "degraded", "offline", "paused", "starting", "stopping")}
    for v in views:
        statuses[v.status] = statuses.get(v.status, 0) + 1
    watched = len(views) - statuses["paused"]
    score = (
        round(100 * (statuses["healthy"] + 0.5 * statuses["degraded"]) / watched)
        if watched
        else 100
    )
    rows = await session.execute(
        _TOKENS_BY_MODEL, {"start": report.start, "end": report.end, "tenant": tenant_id}
    )
    costs = [
        ModelCost(str(m), int(i), int(o), round(cost_usd(prices, str(m), int(i), int(o)), 4))
        for m, i, o in rows.all()
    ]
    costs.sort(key=lambda c: -c.tokens)
    open_alerts = select(Alert).where(Alert.status != "resolved")
    if tenant_id is not None:
        open_alerts = open_alerts.where(Alert.tenant_id == tenant_id)
    active = list((await session.execute(open_alerts)).scalars())
    active.sort(key=lambda a: (SEVERITY_RANK.get(a.severity, 9), -a.last_occurrence.timestamp()))
    issues: list[dict[str, Any]] = [
        {"type": a.type, "agent": a.agent_id, "description": a.message, "severity": a.severity}
        for a in active[:TOP_ISSUES]
    ]
    for v in views:
        if len(issues) >= TOP_ISSUES:
            break
        if v.status in ("degraded", "offline"):
            for issue in v.issues[:1] or [{"type": v.status, "message": f"agent is {v.status}"}]:
                issues.append(
                    {
                        "type": str(issue.get("type", v.status)),
                        "agent": v.agent.id,
                        "description": str(issue.get("message", "")),
                        "severity": "critical" if v.status == "offline" else "warning",
                    }
                )
    return Dashboard(
        generated_at=clock.now(),
        period=period,
        statuses=statuses,
        health_score=score,
        report=report,
        costs=costs,
        active_alerts=len(active),
        top_issues=issues[:TOP_ISSUES],
    )
