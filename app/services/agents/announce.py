"""What an agent's changes announce. Agents keep their own observed status and publish it to
GraphQL subscribers after commit; what else a change means (the monitoring domain's webhook
events) belongs to the listeners registered here, which hear it in the same transaction, at
the same point. The monitoring domain registers its listener where the process is assembled
(app/edge/domains.py), so agents name no domain built on them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent
from app.kernel import effects

STATUS_CHANGED = "status_changed"  # the agent's derived status differs from the last observed
RESTARTED = "restarted"  # an operator (or a remediation) asked for a restart

# (session, agent, what, data): `what` is STATUS_CHANGED or RESTARTED
Listener = Callable[[AsyncSession, Agent, str, dict[str, Any]], Awaitable[None]]

_listeners: dict[str, Listener] = {}


def listen(name: str, listener: Listener) -> None:
    """Hear every announcement (registering a name again replaces its listener)."""
    _listeners[name] = listener


def observe(session: AsyncSession, agent: Agent, status: str) -> dict[str, Any] | None:
    """Keep the agent's derived status when it differs from the last one observed, published
    for GraphQL subscribers after commit: the change, or None when there is none."""
    previous = agent.observed_status
    if previous == status:
        return None
    agent.observed_status = status
    data = {
        "agent_id": agent.id,
        "name": agent.name,
        "type": agent.type,
        "tenant_id": agent.tenant_id,
        "status": status,
        "previous_status": previous,
        "last_heartbeat": agent.last_heartbeat_at.isoformat(),
    }
    effects.record(session, effects.Published("agent_status", agent.id, data))
    return data


async def status(session: AsyncSession, agent: Agent, status: str) -> bool:
    """observe(), and every listener hears a change: whether there was one."""
    data = observe(session, agent, status)
    if data is None:
        return False
    await _announce(session, agent, STATUS_CHANGED, data)
    return True


async def restarted(session: AsyncSession, agent: Agent, data: dict[str, Any]) -> None:
    await _announce(session, agent, RESTARTED, data)


async def _announce(session: AsyncSession, agent: Agent, what: str, data: dict[str, Any]) -> None:
    for listener in tuple(_listeners.values()):
        await listener(session, agent, what, data)
