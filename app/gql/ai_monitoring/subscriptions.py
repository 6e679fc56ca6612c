"""Live monitoring feeds: alert changes (fired, each occurrence, acknowledged, resolved) and
agent status changes. A tenant-scoped subscriber receives its tenant's only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Awaitable
from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert as AlertRow
from app.gql.ai_monitoring.agents import AgentStatus
from app.gql.ai_monitoring.alerts import Alert, AlertSeverity
from app.gql.context import Info
from app.gql.permissions import CanRead
from app.gql.reads import events_of, live
from app.platform.events import Event
from app.services.monitoring import alerts


@strawberry.type
class AgentStatusChange:
    agent_id: str
    name: str
    type: str
    status: AgentStatus
    previous_status: AgentStatus | None
    last_heartbeat: datetime

    @classmethod
    def of(cls, event: Event) -> AgentStatusChange:
        """The change an `agent_status` event tells (app/services/agents/announce.py)."""
        d = event.data
        previous = d.get("previous_status")
        return cls(
            agent_id=str(d["agent_id"]),
            name=str(d["name"]),
            type=str(d["type"]),
            status=AgentStatus(d["status"]),
            previous_status=AgentStatus(previous) if previous else None,
            last_heartbeat=datetime.fromisoformat(str(d["last_heartbeat"])),
        )


@strawberry.type
class MonitoringSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Each change of an alert: fired, another occurrence, acknowledged, resolved.",
    )
    async def alert_changed(
        self,
        info: Info,
        severity: AlertSeverity | None = None,
        agent_id: str | None = None,
    ) -> AsyncGenerator[Alert, None]:
        tenant = info.context.tenant_id
        wanted = events_of(
            "alert",
            tenant_id=tenant,
            severity=severity.value if severity else None,
            agent_id=agent_id,
        )

        def load(session: AsyncSession, event: Event) -> Awaitable[AlertRow]:
            alert_id = uuid.UUID(event.key)
            return alerts.get_alert(session=session, alert_id=alert_id, tenant_id=tenant)

        async for alert in live(info, wanted, load, Alert.of):
            yield alert

    @strawberry.subscription(
        permission_classes=[CanRead], description="An agent's status each time it changes."
    )
    async def agent_status_changed(
        self, info: Info, agent_id: str | None = None
    ) -> AsyncGenerator[AgentStatusChange, None]:
        ctx = info.context
        wanted = events_of("agent_status", tenant_id=ctx.tenant_id, key=agent_id)
        async with ctx.state.broker.subscribe(wanted) as sub:
            async for event in sub:
                yield AgentStatusChange.of(event)
