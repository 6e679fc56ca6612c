"""An agent's status is derived, never stored: from its desired state, what it reports, how
long ago it beat, its health checks and its recent error rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.db.models import Agent

STATUSES = ("healthy", "degraded", "offline", "paused", "starting", "stopping")


@dataclass(frozen=True)
class StatusRules:
    offline_seconds: float = 90.0
    degraded_error_rate_percent: float = 5.0


def failing_checks(agent: Agent) -> list[str]:
    return [
        str(c.get("name"))
        for c in agent.health_checks
        if str(c.get("status", "pass")).lower() in ("fail", "failed", "error", "unhealthy")
    ]


def status_of(agent: Agent, *, now: datetime, error_rate: float | None, rules: StatusRules) -> str:
    if agent.desired_state == "paused":
        return "paused"
    if (now - agent.last_heartbeat_at).total_seconds() > rules.offline_seconds:
        return "offline"
    if agent.reported_state in ("starting", "stopping"):
        return agent.reported_state
    if failing_checks(agent) or (
        error_rate is not None and error_rate > rules.degraded_error_rate_percent
    ):
        return "degraded"
    return "healthy"
