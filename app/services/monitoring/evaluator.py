"""One pass of alert evaluation (the workers' cron runs it every
OPSGRAPH_ALERT_EVAL_INTERVAL_SECONDS; an advisory lock lets one worker at a time do it, and a pass
recorded in PostgreSQL less than most of an interval ago makes the next one a no-op).
For each rule and agent: the metric's value now; a condition that starts to hold opens its
"for" clock (and says threshold_exceeded); one that held for `duration_minutes` fires an alert
(once per rule and agent, counting occurrences after); one that clears resolves its alert
unless an operator already did. Agent statuses are re-derived and announced on change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import (
    Agent,
    AgentLog,
    AgentSample,
    Alert,
    AlertPending,
    AlertRule,
    MonitoringPass,
)
from app.platform import clock
from app.services.agents import controls, queries, registry
from app.services.agents.queries import AgentFigures
from app.services.agents.status import failing_checks, status_of
from app.services.monitoring import alerts, notify
from app.services.monitoring.config import config_of
from app.services.monitoring.rules import METRICS, OPERATORS, holds, list_rules

LOCK_KEY = 0x6F7073_0004  # pg advisory lock: "ops" + seed 004
PRUNE_BATCH = 10_000
REMEDIATOR = "opsgraph:auto_remediate"


@dataclass
class Outcome:
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pending: int = 0
    remediated: list[str] = field(default_factory=list)
    status_changes: int = 0
    skipped: bool = False


def metric_value(
    metric: str, agent: Agent, f: AgentFigures, now: datetime, window: float
) -> float | None:
    if metric == "heartbeat_age_seconds":
        return round(max(0.0, (now - agent.last_heartbeat_at).total_seconds()), 1)
    if metric == "failing_health_checks":
        return float(len(failing_checks(agent)))
    if metric == "error_rate_percent":
        return f.error_rate
    if metric == "requests_per_minute":
        return round(f.requests / (window / 60), 2) if f.requests else None
    if metric == "tokens_per_minute":
        total = f.input_tokens + f.output_tokens
        return round(total / (window / 60), 2) if total else None
    value: float | None = getattr(f, metric, None)
    return value


PASS_NAME = "alert_evaluator"


async def _due(session: AsyncSession, interval: float) -> bool:
    """Record this pass unless the last one is younger than most of an interval (PostgreSQL's
    clock: every worker agrees on it, and the monitoring clock tests move is not used)."""
    recorded = await session.execute(
        insert(MonitoringPass)
        .values(name=PASS_NAME, at=func.statement_timestamp())
        .on_conflict_do_update(
            index_elements=["name"],
            set_={"at": func.statement_timestamp()},
            where=MonitoringPass.at
            <= func.statement_timestamp() - func.make_interval(0, 0, 0, 0, 0, 0, interval * 0.9),
        )
        .returning(MonitoringPass.name)
    )
    return recorded.scalar_one_or_none() is not None


def describe(rule: AlertRule, value: float) -> str:
    m = METRICS[rule.metric]
    if rule.metric == "heartbeat_age_seconds":
        return f"No heartbeat received in {int(value)} seconds (threshold {rule.threshold:g}s)"
    unit = m.unit if m.unit not in ("", "/min") else ""
    return (
        f"{m.label} ({value:g}{unit}) {OPERATORS[rule.operator][1]} threshold "
        f"({rule.threshold:g}{unit})"
    )


async def evaluate(session: AsyncSession) -> Outcome:
    """One pass, in the caller's transaction."""
    out = Outcome()
    locked = (await session.execute(select(func.pg_try_advisory_xact_lock(LOCK_KEY)))).scalar()
    if not locked:
        out.skipped = True  # another worker is evaluating right now
        return out
    config = config_of(session)
    if not await _due(session, config.eval_interval_seconds):
        out.skipped = True  # a pass ran moments ago (workers all try when Redis is away)
        return out
    now = clock.now()
    agents = list((await session.execute(select(Agent).order_by(Agent.id))).scalars())
    window = timedelta(seconds=config.window_seconds)
    figures = await queries.figures_for(
        session, agents, now=now, rules=config.status, window=window, uptime=False
    )
    day = await queries.figures_for(session, agents, now=now, rules=config.status, uptime=False)
    subscribers = await notify.load_subscribers(session)
    for agent in agents:
        if registry.resume_if_due(session, agent, now):
            await session.flush()
        status = status_of(agent, now=now, error_rate=day[agent.id].error_rate, rules=config.status)
        if await notify.agent_status(session, agent, status, subscribers):
            out.status_changes += 1

    rules = await list_rules(session)
    # Open alerts first, locked: an operator's resolve under way is waited for, and the
    # pending rows read next (a statement of their own, so a fresh view) then hold the
    # quiet period that resolve recorded; read the other way round, the pass would see the
    # alert gone and no quiet period, and fire it again at once.
    open_alerts = {
        (a.rule_id, a.agent_id): a
        for a in (
            await session.execute(select(Alert).where(Alert.status != "resolved").with_for_update())
        ).scalars()
    }
    pending = {
        (p.rule_id, p.agent_id): p
        for p in (await session.execute(select(AlertPending).with_for_update())).scalars()
    }
    for rule in rules:
        for agent in agents:
            key = (rule.id, agent.id)
            alert = open_alerts.get(key)
            value = (
                None
                if agent.desired_state == "paused"  # an operator paused it: nothing to alert on
                else metric_value(rule.metric, agent, figures[agent.id], now, config.window_seconds)
            )
            if value is None or not holds(rule.operator, value, rule.threshold):
                if key in pending:
                    await session.delete(pending.pop(key))
                if alert is not None:
                    alerts.close(
                        session,
                        alert,
                        by="opsgraph",
                        resolution=(
                            "condition cleared"
                            + ("" if value is None else f": {METRICS[rule.metric].label} {value:g}")
                        ),
                        automatic=True,
                        subscribers=subscribers,
                    )
                    out.resolved.append(str(alert.id))
                continue
            if alert is not None:
                alert.occurrence_count += 1
                alert.last_occurrence, alert.current = now, value
                alert.message = describe(rule, value)
                alerts.changed(session, alert, subscribers, event=None)
                if await _remediate(session, rule, alert, now, config.remediation_interval_seconds):
                    out.remediated.append(agent.id)
                continue
            started = pending.get(key)
            if started is not None and started.suppressed:
                continue  # an operator resolved it; waits for the condition to clear
            if started is None:
                notify.emit(
                    session,
                    "monitoring.threshold_exceeded",
                    {
                        "rule": rule.name,
                        "agent_id": agent.id,
                        "metric": rule.metric,
                        "operator": rule.operator,
                        "threshold": rule.threshold,
                        "current": value,
                        "duration_minutes": rule.duration_minutes,
                    },
                    object_id=agent.id,
                    tenant_id=agent.tenant_id,
                    subscribers=subscribers,
                )
                if rule.duration_minutes > 0:
                    started = AlertPending(
                        rule_id=rule.id, agent_id=agent.id, since=now, suppressed=False
                    )
                    session.add(started)
                    pending[key] = started
                    out.pending += 1
                    continue
            elif now - started.since < timedelta(minutes=rule.duration_minutes):
                out.pending += 1
                continue
            if started is not None:
                await session.delete(started)
                pending.pop(key, None)
            alert = _fire(session, rule, agent, value, now, subscribers)
            out.fired.append(str(alert.id))
            if await _remediate(session, rule, alert, now, config.remediation_interval_seconds):
                out.remediated.append(agent.id)
    await _prune(session, now, config.log_retention_days, config.metric_retention_days)
    await session.flush()
    return out


def _fire(
    session: AsyncSession,
    rule: AlertRule,
    agent: Agent,
    value: float,
    now: datetime,
    subscribers: list[Any],
) -> Alert:
    alert = Alert(
        id=uuid.uuid4(),
        rule_id=rule.id,
        rule_name=rule.name,
        agent_id=agent.id,
        tenant_id=agent.tenant_id,
        type=METRICS[rule.metric].alert_type,
        severity=rule.severity,
        status="active",
        title=rule.name,
        message=describe(rule, value),
        metric=rule.metric,
        operator=rule.operator,
        threshold=rule.threshold,
        current=value,
        channels=list(rule.channels),
        triggered_at=now,
        last_occurrence=now,
        occurrence_count=1,
        auto_resolved=False,
        remediation_attempts=0,
    )
    session.add(alert)
    alerts.changed(session, alert, subscribers, event="monitoring.alert_triggered")
    return alert


async def _remediate(
    session: AsyncSession, rule: AlertRule, alert: Alert, now: datetime, interval: float
) -> bool:
    """auto_remediate.restart: restart the agent when the alert fires and again, while it
    stays open, at most every `interval` seconds, up to max_attempts."""
    plan = rule.auto_remediate
    if not plan or plan.get("action") != "restart" or alert.status == "resolved":
        return False
    if alert.remediation_attempts >= int(plan.get("max_attempts", 1)):
        return False
    if alert.last_remediation_at is not None and (now - alert.last_remediation_at) < timedelta(
        seconds=interval
    ):
        return False
    alert.remediation_attempts += 1
    alert.last_remediation_at = now
    await controls.restart(
        session=session,
        agent_id=alert.agent_id,
        actor=REMEDIATOR,
        reason=f"auto-remediation of alert {alert.id} ({rule.name}), attempt "
        f"{alert.remediation_attempts}",
        force=False,
        rules=config_of(session).status,
    )
    return True


async def _prune(session: AsyncSession, now: datetime, log_days: float, metric_days: float) -> None:
    """Retention, a bounded batch per pass (a backlog drains over a few passes)."""
    for model, column, days in (
        (AgentLog, AgentLog.at, log_days),
        (AgentSample, AgentSample.at, metric_days),
    ):
        old = (
            select(model.id)  # type: ignore[attr-defined]
            .where(column < now - timedelta(days=days))
            .limit(PRUNE_BATCH)
            .scalar_subquery()
        )
        await session.execute(delete(model).where(model.id.in_(old)))  # type: ignore[attr-defined]
