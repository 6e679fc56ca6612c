"""Alert rules: the metrics a rule may watch, validation of a whole rule set, and replacing
the set atomically (nothing applied when any rule is wrong)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert, AlertPending, AlertRule
from app.kernel.errors import DomainError, InvalidInput
from app.platform import clock
from app.services.monitoring import alerts, notify
from app.services.monitoring.notify import CHANNELS


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str
    alert_type: str
    description: str


# What a rule may name (README lists them). Rates and latencies are over the trailing
# OPSGRAPH_ALERT_WINDOW_SECONDS of heartbeat samples; an agent with no sample there has no
# value and so never matches.
METRICS: dict[str, Metric] = {
    "heartbeat_age_seconds": Metric(
        "Heartbeat age", "s", "offline", "seconds since the agent's last heartbeat"
    ),
    "error_rate_percent": Metric(
        "Error rate", "%", "high_error_rate", "errors / requests x 100 over the window"
    ),
    "avg_latency_ms": Metric("Average latency", "ms", "high_latency", "mean request latency"),
    "p50_latency_ms": Metric("P50 latency", "ms", "high_latency", "median request latency"),
    "p95_latency_ms": Metric("P95 latency", "ms", "high_latency", "95th percentile latency"),
    "p99_latency_ms": Metric("P99 latency", "ms", "high_latency", "99th percentile latency"),
    "requests_per_minute": Metric(
        "Requests per minute", "/min", "traffic", "requests over the window per minute"
    ),
    "tokens_per_minute": Metric(
        "Tokens per minute", "/min", "token_usage", "input + output tokens per minute"
    ),
    "failing_health_checks": Metric(
        "Failing health checks", "", "health_check_failed", "health checks reported failing"
    ),
}
OPERATORS = {
    "gt": (">", "exceeds"),
    "gte": (">=", "reaches"),
    "lt": ("<", "is below"),
    "lte": ("<=", "is at or below"),
    "eq": ("==", "equals"),
    "ne": ("!=", "differs from"),
}
SEVERITIES = ("critical", "warning", "info")
MAX_RULES = 200
MAX_DURATION_MINUTES = 24 * 60
MAX_REMEDIATION_ATTEMPTS = 10


class InvalidMetric(DomainError):
    code = "invalid_metric"


@dataclass(frozen=True)
class RuleInput:
    name: str
    metric: str
    operator: str
    threshold: float
    severity: str
    duration_minutes: int = 0
    channels: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    auto_remediate: dict[str, Any] | None = None


def holds(operator: str, value: float, threshold: float) -> bool:
    return {
        "gt": value > threshold,
        "gte": value >= threshold,
        "lt": value < threshold,
        "lte": value <= threshold,
        "eq": value == threshold,
        "ne": value != threshold,
    }[operator]


def validate(rules: Sequence[RuleInput]) -> None:
    """Every problem of the set, raised for the first one found (by position)."""
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} rules", field="rules")
    seen: set[str] = set()
    for i, r in enumerate(rules):
        at = f"rules[{i}]"
        if r.metric not in METRICS:
            raise InvalidMetric(
                f"{at}: unknown metric {r.metric!r}; known: {', '.join(METRICS)}",
                field=f"{at}.condition.metric",
            )
        if not r.name.strip():
            raise InvalidInput(f"{at}: name must not be blank", field=f"{at}.name")
        if r.name in seen:
            raise InvalidInput(f"{at}: duplicate rule name {r.name!r}", field=f"{at}.name")
        seen.add(r.name)
        if r.operator not in OPERATORS:
            raise InvalidInput(
                f"{at}: operator must be one of {', '.join(OPERATORS)}",
                field=f"{at}.condition.operator",
            )
        if r.severity not in SEVERITIES:
            raise InvalidInput(
                f"{at}: severity must be one of {', '.join(SEVERITIES)}", field=f"{at}.severity"
            )
        if not 0 <= r.duration_minutes <= MAX_DURATION_MINUTES:
            raise InvalidInput(
                f"{at}: duration_minutes must be between 0 and {MAX_DURATION_MINUTES}",
                field=f"{at}.condition.duration_minutes",
            )
        bad = [c for c in r.channels if c not in CHANNELS]
        if bad:
            raise InvalidInput(
                f"{at}: unknown channel {bad[0]!r}; known: {', '.join(CHANNELS)}",
                field=f"{at}.channels",
            )
        if r.auto_remediate is not None:
            action = r.auto_remediate.get("action")
            attempts = r.auto_remediate.get("max_attempts", 1)
            if action != "restart":
                raise InvalidInput(
                    f"{at}: auto_remediate.action must be 'restart'",
                    field=f"{at}.auto_remediate.action",
                )
            if (
                not isinstance(attempts, int)
                or isinstance(attempts, bool)
                or not 1 <= attempts <= MAX_REMEDIATION_ATTEMPTS
            ):
                raise InvalidInput(
                    f"{at}: auto_remediate.max_attempts must be 1 to {MAX_REMEDIATION_ATTEMPTS}",
                    field=f"{at}.auto_remediate.max_attempts",
                )


async def list_rules(session: AsyncSession) -> list[AlertRule]:
    return list((await session.execute(select(AlertRule).order_by(AlertRule.position))).scalars())


async def set_rules(
    *, session: AsyncSession, rules: Sequence[RuleInput], actor: str
) -> list[AlertRule]:
    """Replace the rule set. A rule keeps its id (and its open alerts, its pending "for"
    clock) while its name stays; a removed rule's open alerts are resolved as such."""
    validate(rules)
    now = clock.now()
    # one writer at a time: two concurrent PUTs must not interleave their rows
    await session.execute(select(AlertRule.id).with_for_update())
    existing = {r.name: r for r in await list_rules(session)}
    keep: list[AlertRule] = []
    for position, r in enumerate(rules):
        row = existing.pop(r.name, None)
        if row is None:
            row = AlertRule(id=uuid.uuid4(), name=r.name)
            session.add(row)
        elif (row.metric, row.operator, row.threshold) != (r.metric, r.operator, r.threshold):
            # a changed condition starts its "for" clock again
            await session.execute(delete(AlertPending).where(AlertPending.rule_id == row.id))
        row.position = position
        row.metric, row.operator, row.threshold = r.metric, r.operator, float(r.threshold)
        row.duration_minutes = r.duration_minutes
        row.severity = r.severity
        row.channels, row.recipients = list(r.channels), list(r.recipients)
        row.auto_remediate = r.auto_remediate
        row.updated_by, row.updated_at = actor, now
        keep.append(row)
    gone = [row.id for row in existing.values()]
    if gone:
        await session.execute(delete(AlertPending).where(AlertPending.rule_id.in_(gone)))
        orphans = select(Alert).where(Alert.rule_id.in_(gone), Alert.status != "resolved")
        subscribers = await notify.load_subscribers(session)
        for alert in (await session.execute(orphans.with_for_update())).scalars():
            alerts.close(
                session,
                alert,
                by=actor,
                resolution="rule removed",
                automatic=True,
                subscribers=subscribers,
            )
        await session.execute(delete(AlertRule).where(AlertRule.id.in_(gone)))
    await session.flush()
    return keep
