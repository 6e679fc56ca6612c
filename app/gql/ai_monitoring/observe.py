"""What operators read about the fleet in GraphQL: logs (full-text search), metric series,
the dashboard and system health."""

from __future__ import annotations

import time
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.errors import raised
from app.gql.forward import forward
from app.gql.permissions import CanRead
from app.kernel.errors import DomainError, InvalidInput
from app.platform import clock
from app.services.monitoring import dashboard as dashboards
from app.services.monitoring import logs, metrics


@strawberry.enum
class LogLevel(Enum):
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@strawberry.type
class LogEntry:
    id: strawberry.ID
    timestamp: datetime
    level: LogLevel
    agent_id: str | None
    message: str
    context: JSON
    trace_id: str | None

    @classmethod
    def of(cls, row: Any) -> LogEntry:
        """A stored line (a row of logs.COLUMNS)."""
        return forward(cls, row, timestamp=row.at)


@strawberry.type
class Point:
    timestamp: datetime
    value: float | None


@strawberry.type
class AgentCount:
    agent_id: str
    value: int


@strawberry.type
class TypeCount:
    type: str
    value: int


@strawberry.type
class RequestMetrics:
    total: int
    by_agent: list[AgentCount]
    timeseries: list[Point]


@strawberry.type
class LatencyPoint:
    timestamp: datetime
    avg: float | None
    p95: float | None


@strawberry.type
class LatencyMetrics:
    avg: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    timeseries: list[LatencyPoint]


@strawberry.type
class TokenPoint:
    timestamp: datetime
    input: float
    output: float


@strawberry.type
class TokenMetrics:
    input: float = strawberry.field(description="Float: totals may exceed 32-bit integers")
    output: float
    timeseries: list[TokenPoint]


@strawberry.type
class ErrorMetrics:
    total: int
    by_type: list[TypeCount]
    timeseries: list[Point]


@strawberry.type
class MetricsReport:
    start: datetime
    end: datetime
    granularity: str
    requests: RequestMetrics
    latency: LatencyMetrics
    tokens: TokenMetrics
    errors: ErrorMetrics

    @classmethod
    def of(cls, r: metrics.Report) -> MetricsReport:
        return cls(
            start=r.start,
            end=r.end,
            granularity=r.granularity,
            requests=RequestMetrics(
                total=r.requests,
                by_agent=[AgentCount(agent_id=a, value=n) for a, n in r.by_agent.items()],
                timeseries=[Point(timestamp=b.timestamp, value=b.requests) for b in r.buckets],
            ),
            latency=LatencyMetrics(
                avg=r.latency["avg"],
                p50=r.latency["p50"],
                p95=r.latency["p95"],
                p99=r.latency["p99"],
                timeseries=[
                    LatencyPoint(timestamp=b.timestamp, avg=b.avg_latency_ms, p95=b.p95_latency_ms)
                    for b in r.buckets
                ],
            ),
            tokens=TokenMetrics(
                input=r.input_tokens,
                output=r.output_tokens,
                timeseries=[
                    TokenPoint(timestamp=b.timestamp, input=b.input_tokens, output=b.output_tokens)
                    for b in r.buckets
                ],
            ),
            errors=ErrorMetrics(
                total=r.errors,
                by_type=[TypeCount(type=t, value=n) for t, n in r.errors_by_type.items()],
                timeseries=[Point(timestamp=b.timestamp, value=b.errors) for b in r.buckets],
            ),
        )


@strawberry.type
class FleetSummary:
    total_agents: int
    healthy: int
    degraded: int
    offline: int
    paused: int
    health_score: int


@strawberry.type
class ModelCost:
    model: str
    tokens: float
    input_tokens: float
    output_tokens: float
    cost: float


@strawberry.type
class Issue:
    type: str
    agent: str
    description: str
    severity: str


@strawberry.type
class Dashboard:
    generated_at: datetime
    period: str
    summary: FleetSummary
    total_requests: int
    failed_requests: int
    success_rate: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    total_tokens: float
    estimated_cost_usd: float
    cost_by_model: list[ModelCost]
    active_alerts: int
    top_issues: list[Issue]


@strawberry.type
class HealthComponent:
    name: str
    status: str
    latency_ms: float | None
    detail: JSON


@strawberry.type
class MonitoringHealth:
    status: str
    timestamp: datetime
    components: list[HealthComponent]


@strawberry.type
class ObserveQueries:
    @strawberry.field(permission_classes=[CanRead], description="Agent logs, newest first.")
    async def logs(
        self,
        info: Info,
        search: str | None = None,
        agent_id: str | None = None,
        level: LogLevel | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        query = logs.LogQuery(
            agent_id=agent_id,
            level=level.value if level else None,
            start_time=start_time,
            end_time=end_time,
            search=search,
            limit=limit,
            tenant_id=info.context.tenant_id,
        )
        try:
            async with info.context.reading() as session:
                found = await logs.search(session=session, query=query)
        except InvalidInput as exc:
            raise raised(exc) from None
        return [LogEntry.of(r) for r in found]

    @strawberry.field(permission_classes=[CanRead], description="Metric series (UTC buckets).")
    async def metrics(
        self,
        info: Info,
        agent_id: str | None = None,
        period: str = "24h",
        granularity: str | None = None,
    ) -> MetricsReport:
        try:
            async with info.context.reading() as session:
                report = await metrics.report(
                    session,
                    period=period,
                    granularity=granularity,
                    scope=metrics.Scope(agent_id=agent_id, tenant_id=info.context.tenant_id),
                )
        except DomainError as exc:
            raise raised(exc) from None
        return MetricsReport.of(report)

    @strawberry.field(permission_classes=[CanRead], description="Seed 004's dashboard.")
    async def dashboard(
        self, info: Info, period: str = "24h", tenant_id: str | None = None
    ) -> Dashboard:
        state = info.context.state
        try:
            async with info.context.reading() as session:
                d = await dashboards.dashboard(
                    session=session,
                    period=period,
                    tenant_id=info.context.tenant_for(tenant_id),
                    prices=state.settings.prices,
                )
        except DomainError as exc:
            raise raised(exc) from None
        r = d.report
        return Dashboard(
            generated_at=d.generated_at,
            period=d.period,
            summary=FleetSummary(
                total_agents=d.total_agents,
                healthy=d.statuses["healthy"],
                degraded=d.statuses["degraded"],
                offline=d.statuses["offline"],
                paused=d.statuses["paused"],
                health_score=d.health_score,
            ),
            total_requests=r.requests,
            failed_requests=r.errors,
            success_rate=round((r.requests - r.errors) / r.requests * 100, 2)
            if r.requests
            else None,
            avg_latency_ms=r.latency["avg"],
            p95_latency_ms=r.latency["p95"],
            p99_latency_ms=r.latency["p99"],
            total_tokens=sum(c.tokens for c in d.costs),
            estimated_cost_usd=round(sum(c.cost for c in d.costs), 4),
            cost_by_model=[forward(ModelCost, c) for c in d.costs],
            active_alerts=d.active_alerts,
            top_issues=[Issue(**i) for i in d.top_issues],
        )

    @strawberry.field(
        permission_classes=[CanRead],
        description="PostgreSQL, Redis, workers and model providers, checked now.",
    )
    async def monitoring_health(self, info: Info) -> MonitoringHealth:
        state = info.context.state
        started = time.perf_counter()
        found = await state.health.current(tenant_id=info.context.tenant_id)
        components = [
            HealthComponent(
                name="api",
                status="healthy",
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                detail=cast(JSON, {}),
            ),
            *(
                forward(HealthComponent, c, name=n)
                for n, c in {**found.checks, **found.models}.items()
            ),
        ]
        return MonitoringHealth(status=found.status, timestamp=clock.now(), components=components)
