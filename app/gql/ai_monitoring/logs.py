"""Seed 004's log ingest in GraphQL, and a live tail of the stored lines (filtered by agent and
level floor; a tenant's subscriber sees its tenant's lines only)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.gql.ai_monitoring.alerts import MonitoringError
from app.gql.ai_monitoring.observe import LogEntry, LogLevel
from app.gql.context import Info
from app.gql.errors import errors_of
from app.gql.forward import forward
from app.gql.permissions import CanOperate, CanRead
from app.kernel.errors import DomainError
from app.platform.events import Event
from app.services.monitoring import logs


@strawberry.input
class LogInput:
    timestamp: datetime
    level: LogLevel
    message: str = strawberry.field(description=f"1 to {logs.MAX_MESSAGE} characters.")
    agent_id: str | None = None
    context: JSON | None = strawberry.field(
        default=None, description=f"An object of at most {logs.MAX_CONTEXT_KEYS} keys."
    )
    trace_id: str | None = None


@strawberry.type
class IngestLogsPayload:
    accepted: int
    errors: list[MonitoringError]


@strawberry.type
class LogMutations:
    @strawberry.mutation(
        permission_classes=[CanOperate],
        description=f"Store up to {logs.MAX_BATCH} lines, all or none (an error names the first"
        " bad entry's index). A tenant's lines may name only its agents.",
    )
    async def ingest_logs(self, info: Info, entries: list[LogInput]) -> IngestLogsPayload:
        ctx = info.context
        batch = [
            forward(
                logs.LogEntry,
                e,
                level=e.level.value,
                context=cast(dict[str, Any], e.context if e.context is not None else {}),
            )
            for e in entries
        ]
        try:
            async with ctx.writing() as session:
                n = await logs.ingest(session=session, entries=batch, tenant_id=ctx.tenant_id)
        except DomainError as exc:
            # any refusal of a batch (too many lines included) answers INVALID here
            return IngestLogsPayload(
                accepted=0, errors=errors_of(MonitoringError, exc, code="INVALID")
            )
        return IngestLogsPayload(accepted=n, errors=[])


@strawberry.type
class LogSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="Each line as it is stored, oldest first within a request (`level`: a floor,"
        " WARN means WARN and ERROR). A subscriber that falls far behind loses the oldest"
        " requests' lines, never blocks ingest.",
    )
    async def log_tail(
        self, info: Info, agent_id: str | None = None, level: LogLevel | None = None
    ) -> AsyncGenerator[LogEntry, None]:
        ctx = info.context
        tenant = ctx.tenant_id
        floor = logs.LEVELS[level.value] if level else 0

        def wanted(e: Event) -> bool:
            d = e.data
            return (
                e.kind == logs.TAIL_KIND
                and int(d.get("max_level", 0)) >= floor
                and (agent_id is None or agent_id in d.get("agents", []))
                and (tenant is None or tenant in d.get("tenants", []))
            )

        async with ctx.state.broker.subscribe(wanted) as sub:
            async for event in sub:
                async with ctx.reading() as session:
                    rows = await logs.lines(
                        session=session,
                        ids=[int(i) for i in event.data.get("ids", [])],
                        agent_id=agent_id,
                        level=level.value if level else None,
                        tenant_id=tenant,
                    )
                for row in rows:
                    yield LogEntry.of(row)
