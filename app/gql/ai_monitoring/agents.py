"""Agent types, queries and control mutations: thin resolvers over app.services.agents."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.errors import CaptureErrors
from app.gql.forward import forward
from app.gql.pagination import Connection, Listed, Paged, Slice, Sort, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.reads import or_null
from app.kernel.errors import InvalidInput
from app.kernel.paging import Keyset, Page, PageRequest
from app.platform import clock
from app.services.agents import controls, queries, registry
from app.services.agents.status import StatusRules


@strawberry.enum
class AgentStatus(Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    PAUSED = "paused"
    STARTING = "starting"
    STOPPING = "stopping"


@strawberry.type
class AgentMetrics:
    uptime_percent: float
    requests_24h: int
    errors_24h: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    error_rate: float | None
    input_tokens: int
    output_tokens: int


@strawberry.type
class Agent:
    id: str
    name: str
    type: str
    version: str | None
    tenant_id: str | None
    status: AgentStatus
    desired_state: str
    restart_generation: int
    replicas: int
    resume_at: datetime | None
    last_heartbeat: datetime
    configuration: JSON
    health_checks: JSON
    issues: JSON
    metrics: AgentMetrics

    @classmethod
    def of(cls, view: queries.AgentView) -> Agent:
        a, f = view.agent, view.figures
        return forward(
            cls,
            a,
            status=AgentStatus(view.status),
            last_heartbeat=a.last_heartbeat_at,
            issues=cast(JSON, view.issues),
            metrics=forward(AgentMetrics, f, requests_24h=f.requests, errors_24h=f.errors),
        )


@strawberry.input
class HealthCheckInput:
    name: str
    status: str = strawberry.field(default="pass", description="pass, warn or fail")
    latency_ms: float | None = None


@strawberry.input(description="One heartbeat: what the agent is, and its metrics since the last.")
class HeartbeatInput:
    name: str
    type: str
    version: str | None = None
    location_id: str | None = None
    tenant_id: str | None = None
    state: str = strawberry.field(default="running", description="running, starting, stopping")
    configuration: JSON | None = None
    health_checks: list[HealthCheckInput] = strawberry.field(default_factory=list)
    requests: int = 0
    errors: int = 0
    errors_by_type: JSON | None = strawberry.field(default=None, description="{type: count}")
    latency_ms: list[float] = strawberry.field(default_factory=list)
    input_tokens: float = 0
    output_tokens: float = 0
    tokens_by_model: JSON | None = strawberry.field(
        default=None, description="{model: {input, output}} or {model: total}"
    )


@strawberry.type
class DesiredState:
    state: str
    restart_generation: int
    replicas: int
    resume_at: datetime | None


@strawberry.input
class AgentFilter:
    status: AgentStatus | None = None
    type: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class _Scope:
    status: str | None
    type: str | None
    tenant_id: str | None


class _Agents:
    """The agents' pages (keyed by id; their status is computed, so not a plain listing)."""

    async def page(
        self, *, session: AsyncSession, filter: _Scope, page: PageRequest, rules: StatusRules
    ) -> Page[queries.AgentView]:
        views, more = await queries.page_agents(
            session=session,
            rules=rules,
            limit=page.limit,
            after=str(page.after.id) if page.after else None,
            before=str(page.before.id) if page.before else None,
            from_end=page.from_end,
            **vars(filter),
        )
        return Page(rows=[(v, Keyset(v.agent.id, v.agent.id)) for v in views], more=more)

    async def count(self, *, session: AsyncSession, filter: _Scope, rules: StatusRules) -> int:
        return await queries.count_agents(session=session, rules=rules, **vars(filter))


AGENTS = Listed("agents", _Agents(), Agent.of, Sort("id", descending=False))


@strawberry.type
class AgentQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Agents ordered by id.",
        extensions=[Paged(AgentFilter)],
    )
    async def agents(self, info: Info, window: Slice) -> Connection[Agent]:
        f: AgentFilter = window.filter
        scope = _Scope(
            status=f.status.value if f.status else None,
            type=f.type,
            tenant_id=info.context.tenant_for(f.tenant_id),
        )
        rules = info.context.state.settings.agent_rules
        return await connection(info, window, AGENTS, scope, rules=rules)

    @strawberry.field(permission_classes=[CanRead], description="One agent, or null if unknown.")
    async def agent(self, info: Info, id: str) -> Agent | None:
        rules = info.context.state.settings.agent_rules
        tenant = info.context.tenant_id

        async def load(session: AsyncSession) -> queries.AgentView:
            row = await registry.get_agent(session=session, agent_id=id, tenant_id=tenant)
            now = clock.now()
            figures = await queries.figures_for(session, [row], now=now, rules=rules)
            return queries.view(row, figures[row.id], now=now, rules=rules)

        return await or_null(info, load, Agent.of)


@strawberry.type
class AgentError:
    field: str | None
    code: str = strawberry.field(description="agent_not_found, agent_already_paused, INVALID")
    message: str


@strawberry.type
class AgentControlPayload:
    agent_id: str | None
    previous_status: str | None
    desired_state: str | None
    restart_generation: int | None
    replicas: int | None
    resume_at: datetime | None
    errors: list[AgentError]


@strawberry.type
class HeartbeatPayload:
    agent_id: str | None
    status: AgentStatus | None
    desired_state: DesiredState | None
    errors: list[AgentError]


def _whole(value: float, field: str) -> int:
    if value != int(value):
        raise InvalidInput(f"{field} must be a whole number", field=field)
    return int(value)


def _beat(b: HeartbeatInput) -> registry.Heartbeat:
    for name, value in (
        ("configuration", b.configuration),
        ("errorsByType", b.errors_by_type),
        ("tokensByModel", b.tokens_by_model),
    ):
        if value is not None and not isinstance(value, dict):
            raise InvalidInput(f"{name} must be a JSON object", field=name)
    return forward(
        registry.Heartbeat,
        b,
        configuration=dict(cast(dict[str, Any], b.configuration or {})),
        health_checks=[asdict(c) for c in b.health_checks],
        metrics=forward(
            registry.Metrics,
            b,
            errors_by_type=dict(cast(dict[str, int], b.errors_by_type or {})),
            latencies_ms=list(b.latency_ms),
            input_tokens=_whole(b.input_tokens, "inputTokens"),
            output_tokens=_whole(b.output_tokens, "outputTokens"),
            tokens_by_model=dict(cast(dict[str, Any], b.tokens_by_model or {})),
        ),
    )


async def _control(
    info: Info, call: Callable[..., Awaitable[controls.ControlResult]], agent_id: str, **more: Any
) -> AgentControlPayload:
    """Run one control of an agent in a unit of work as the caller (actor, tenant)."""
    rules = info.context.state.settings.agent_rules
    done = await info.context.act_as_caller(call, agent_id=agent_id, rules=rules, **more)
    a = done.agent
    return forward(
        AgentControlPayload, a, agent_id=a.id, previous_status=done.previous_status, errors=[]
    )


async def _scale(**control: Any) -> controls.ControlResult:
    done, _ = await controls.scale(**control)
    return done


@strawberry.type
class AgentMutations:
    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Report in (register or update) and receive the desired state.",
        extensions=[CaptureErrors()],
    )
    async def report_heartbeat(
        self, info: Info, agent_id: str, input: HeartbeatInput
    ) -> HeartbeatPayload:
        ctx = info.context
        beat = _beat(input)
        async with ctx.writing() as session:
            agent, wanted = await registry.heartbeat(
                session=session,
                agent_id=agent_id,
                beat=beat,
                rules=ctx.state.settings.agent_rules,
                tenant_id=ctx.tenant_id,
            )
            status = agent.observed_status or "healthy"
        return HeartbeatPayload(
            agent_id=agent_id,
            status=AgentStatus(status),
            desired_state=forward(DesiredState, wanted),
            errors=[],
        )

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def pause_agent(
        self,
        info: Info,
        id: str,
        reason: str | None = None,
        duration_minutes: int | None = None,
    ) -> AgentControlPayload:
        return await _control(
            info, controls.pause, id, reason=reason, duration_minutes=duration_minutes
        )

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def resume_agent(
        self, info: Info, id: str, reason: str | None = None
    ) -> AgentControlPayload:
        return await _control(info, controls.resume, id, reason=reason)

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def restart_agent(
        self, info: Info, id: str, reason: str | None = None, force: bool = False
    ) -> AgentControlPayload:
        return await _control(info, controls.restart, id, reason=reason, force=force)

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def scale_agent(
        self, info: Info, id: str, replicas: int, reason: str | None = None
    ) -> AgentControlPayload:
        return await _control(info, _scale, id, reason=reason, replicas=replicas)
