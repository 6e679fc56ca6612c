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
from app.gql.reads import each_found
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


def _visible(e: Event, tenant_id: str | None) -> bool:
    return tenant_id is None or e.data.get("tenant_id") == tenant_id


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
        ctx = info.context
        tenant = ctx.tenant_id

        def wanted(e: Event) -> bool:
            return (
                e.kind == "alert"
                and _visible(e, tenant)
                and (severity is None or e.data.get("severity") == severity.value)
                and (agent_id is None or e.data.get("agent_id") == agent_id)
            )

        def load(session: AsyncSession, event: Event) -> Awaitable[AlertRow]:
            alert_id = uuid.UUID(event.key)
            return alerts.get_alert(session=session, alert_id=alert_id, tenant_id=tenant)

        async with ctx.state.broker.subscribe(wanted) as sub:
            async for alert in each_found(info, sub, load, Alert.of):
                yield alert

    @strawberry.subscription(
        permission_classes=[CanRead], description="An agent's status each time it changes."
    )
    async def agent_status_changed(
        self, info: Info, agent_id: str | None = None
    ) -> AsyncGenerator[AgentStatusChange, None]:
        ctx = info.context
        tenant = ctx.tenant_id

        def wanted(e: Event) -> bool:
            return (
                e.kind == "agent_status"
                and _visible(e, tenant)
                and (agent_id is None or e.key == agent_id)
            )

        async with ctx.state.broker.subscribe(wanted) as sub:
            async for event in sub:
                d = event.data
                previous = d.get("previous_status")
                yield AgentStatusChange(
                    agent_id=str(d["agent_id"]),
                    name=str(d["name"]),
                    type=str(d["type"]),
                    status=AgentStatus(d["status"]),
                    previous_status=AgentStatus(previous) if previous else None,
                    last_heartbeat=datetime.fromisoformat(str(d["last_heartbeat"])),
                )
