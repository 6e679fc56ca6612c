"""Operators' controls: pause (optionally for a while), resume, restart, scale. Each changes
the desired state the agent receives on its next heartbeat and is recorded (who, when, why)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent, AgentControl
from app.kernel.errors import DomainError, InvalidInput
from app.platform import clock
from app.services.agents import announce
from app.services.agents.registry import get_agent, quick_status, resume_if_due
from app.services.agents.status import StatusRules, status_of

MAX_REPLICAS = 1000
MAX_PAUSE_MINUTES = 7 * 24 * 60


class AlreadyPaused(DomainError):
    code = "agent_already_paused"


@dataclass(frozen=True)
class ControlResult:
    agent: Agent
    previous_status: str
    at: datetime


async def _control(
    session: AsyncSession,
    agent_id: str,
    tenant_id: str | None,
    rules: StatusRules,
) -> tuple[Agent, str, datetime]:
    now = clock.now()
    agent = await get_agent(
        session=session, agent_id=agent_id, tenant_id=tenant_id, for_update=True
    )
    resume_if_due(session, agent, now)
    return agent, status_of(agent, now=now, error_rate=None, rules=rules), now


def _record(
    session: AsyncSession,
    agent: Agent,
    action: str,
    *,
    actor: str,
    reason: str | None,
    previous: str,
    at: datetime,
    details: dict[str, Any],
) -> None:
    session.add(
        AgentControl(
            agent_id=agent.id,
            action=action,
            reason=reason,
            actor=actor,
            at=at,
            previous_status=previous,
            details=details,
        )
    )


async def pause(
    *,
    session: AsyncSession,
    agent_id: str,
    actor: str,
    reason: str | None,
    duration_minutes: int | None,
    rules: StatusRules,
    tenant_id: str | None = None,
) -> ControlResult:
    if duration_minutes is not None and not 1 <= duration_minutes <= MAX_PAUSE_MINUTES:
        raise InvalidInput(
            f"duration_minutes must be between 1 and {MAX_PAUSE_MINUTES}", field="duration_minutes"
        )
    agent, previous, now = await _control(session, agent_id, tenant_id, rules)
    if agent.desired_state == "paused":
        raise AlreadyPaused(f"agent {agent_id!r} is already paused", field="agent_id")
    agent.desired_state = "paused"
    agent.paused_at = now
    agent.pause_reason = reason
    agent.resume_at = now + timedelta(minutes=duration_minutes) if duration_minutes else None
    await announce.status(session, agent, "paused")
    _record(
        session,
        agent,
        "pause",
        actor=actor,
        reason=reason,
        previous=previous,
        at=now,
        details={"duration_minutes": duration_minutes},
    )
    await session.flush()
    return ControlResult(agent, previous, now)


async def resume(
    *,
    session: AsyncSession,
    agent_id: str,
    actor: str,
    reason: str | None,
    rules: StatusRules,
    tenant_id: str | None = None,
) -> ControlResult:
    agent, previous, now = await _control(session, agent_id, tenant_id, rules)
    agent.desired_state = "running"
    agent.paused_at = agent.resume_at = None
    await announce.status(session, agent, quick_status(agent, now, rules))
    _record(
        session, agent, "resume", actor=actor, reason=reason, previous=previous, at=now, details={}
    )
    await session.flush()
    return ControlResult(agent, previous, now)


async def restart(
    *,
    session: AsyncSession,
    agent_id: str,
    actor: str,
    reason: str | None,
    force: bool,
    rules: StatusRules,
    tenant_id: str | None = None,
) -> ControlResult:
    agent, previous, now = await _control(session, agent_id, tenant_id, rules)
    agent.restart_generation += 1
    await announce.restarted(
        session,
        agent,
        {
            "agent_id": agent.id,
            "restart_generation": agent.restart_generation,
            "reason": reason,
            "force": force,
            "requested_by": actor,
        },
    )
    _record(
        session,
        agent,
        "restart",
        actor=actor,
        reason=reason,
        previous=previous,
        at=now,
        details={"force": force, "restart_generation": agent.restart_generation},
    )
    await session.flush()
    return ControlResult(agent, previous, now)


async def scale(
    *,
    session: AsyncSession,
    agent_id: str,
    actor: str,
    reason: str | None,
    replicas: int,
    rules: StatusRules,
    tenant_id: str | None = None,
) -> tuple[ControlResult, int]:
    if not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidInput(f"replicas must be between 0 and {MAX_REPLICAS}", field="replicas")
    agent, previous, now = await _control(session, agent_id, tenant_id, rules)
    before = agent.replicas
    agent.replicas = replicas
    _record(
        session,
        agent,
        "scale",
        actor=actor,
        reason=reason,
        previous=previous,
        at=now,
        details={"previous_replicas": before, "replicas": replicas},
    )
    await session.flush()
    return ControlResult(agent, previous, now), before
