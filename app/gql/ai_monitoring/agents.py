"""Agent types, queries and control mutations: thin resolvers over app.services.agents."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app import clock
from app.gql.context import Info
from app.gql.pagination import Connection, Slice, connection
from app.gql.permissions import CanOperate, CanRead
from app.services.agents import controls, queries, registry
from app.services.errors import DomainError, InvalidInput
from app.services.paging import Keyset, Page, PageRequest
from app.uow import read_only, unit_of_work


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
    view: strawberry.Private[queries.AgentView]

    @strawberry.field
    def id(self) -> str:
        return self.view.agent.id

    @strawberry.field
    def name(self) -> str:
        return self.view.agent.name

    @strawberry.field
    def type(self) -> str:
        return self.view.agent.type

    @strawberry.field
    def version(self) -> str | None:
        return self.view.agent.version

    @strawberry.field
    def tenant_id(self) -> str | None:
        return self.view.agent.tenant_id

    @strawberry.field
    def status(self) -> AgentStatus:
        return AgentStatus(self.view.status)

    @strawberry.field
    def desired_state(self) -> str:
        return self.view.agent.desired_state

    @strawberry.field
    def restart_generation(self) -> int:
        return self.view.agent.restart_generation

    @strawberry.field
    def replicas(self) -> int:
        return self.view.agent.replicas

    @strawberry.field
    def resume_at(self) -> datetime | None:
        return self.view.agent.resume_at

    @strawberry.field
    def last_heartbeat(self) -> datetime:
        return self.view.agent.last_heartbeat_at

    @strawberry.field
    def configuration(self) -> JSON:
        return cast(JSON, self.view.agent.configuration)

    @strawberry.field
    def health_checks(self) -> JSON:
        return cast(JSON, self.view.agent.health_checks)

    @strawberry.field
    def issues(self) -> JSON:
        return cast(JSON, self.view.issues)

    @strawberry.field
    def metrics(self) -> AgentMetrics:
        f = self.view.figures
        return AgentMetrics(
            uptime_percent=f.uptime_percent,
            requests_24h=f.requests,
            errors_24h=f.errors,
            avg_latency_ms=f.avg_latency_ms,
            p95_latency_ms=f.p95_latency_ms,
            error_rate=f.error_rate,
            input_tokens=f.input_tokens,
            output_tokens=f.output_tokens,
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


async def _page(info: Info, scope: _Scope, request: PageRequest) -> Page[queries.AgentView]:
    async with read_only(info.context.state.sessionmaker) as session:
        views, more = await queries.page_agents(
            session=session,
            rules=info.context.state.settings.agent_rules,
            limit=request.limit,
            after=str(request.after.id) if request.after else None,
            before=str(request.before.id) if request.before else None,
            from_end=request.from_end,
            status=scope.status,
            type=scope.type,
            tenant_id=scope.tenant_id,
        )
    return Page(rows=[(v, Keyset(v.agent.id, v.agent.id)) for v in views], more=more)


@strawberry.type
class AgentQueries:
    @strawberry.field(permission_classes=[CanRead], description="Agents ordered by id.")
    async def agents(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AgentFilter | None = None,
    ) -> Connection[Agent]:
        f = filter or AgentFilter()
        scope = _Scope(
            status=f.status.value if f.status else None,
            type=f.type,
            tenant_id=info.context.tenant_id or f.tenant_id,
        )

        async def rows(_: AsyncSession, request: PageRequest) -> Page[queries.AgentView]:
            return await _page(info, scope, request)

        async def count(session: AsyncSession) -> int:
            return await queries.count_agents(
                session=session,
                rules=info.context.state.settings.agent_rules,
                status=scope.status,
                type=scope.type,
                tenant_id=scope.tenant_id,
            )

        return await connection(
            info,
            Slice(first, after, last, before),
            name="agents",
            order_by="id",
            descending=False,
            scope=scope,
            rows=rows,
            count=count,
            node=lambda v: Agent(view=v),
        )

    @strawberry.field(permission_classes=[CanRead], description="One agent, or null if unknown.")
    async def agent(self, info: Info, id: str) -> Agent | None:
        state = info.context.state
        async with read_only(state.sessionmaker) as session:
            try:
                row = await registry.get_agent(
                    session=session, agent_id=id, tenant_id=info.context.tenant_id
                )
            except DomainError:
                return None
            now = clock.now()
            rules = state.settings.agent_rules
            figures = await queries.figures_for(session, [row], now=now, rules=rules)
        return Agent(view=queries.view(row, figures[row.id], now=now, rules=rules))


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


def _payload(done: controls.ControlResult) -> AgentControlPayload:
    a = done.agent
    return AgentControlPayload(
        agent_id=a.id,
        previous_status=done.previous_status,
        desired_state=a.desired_state,
        restart_generation=a.restart_generation,
        replicas=a.replicas,
        resume_at=a.resume_at,
        errors=[],
    )


def _failed(exc: DomainError) -> AgentControlPayload:
    return AgentControlPayload(
        agent_id=None,
        previous_status=None,
        desired_state=None,
        restart_generation=None,
        replicas=None,
        resume_at=None,
        errors=[AgentError(field=exc.field, code=exc.code, message=exc.message)],
    )


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
    return registry.Heartbeat(
        name=b.name,
        type=b.type,
        version=b.version,
        location_id=b.location_id,
        tenant_id=b.tenant_id,
        state=b.state,
        configuration=dict(cast(dict[str, Any], b.configuration or {})),
        health_checks=[
            {"name": c.name, "status": c.status, "latency_ms": c.latency_ms}
            for c in b.health_checks
        ],
        metrics=registry.Metrics(
            requests=b.requests,
            errors=b.errors,
            errors_by_type=dict(cast(dict[str, int], b.errors_by_type or {})),
            latencies_ms=list(b.latency_ms),
            input_tokens=_whole(b.input_tokens, "inputTokens"),
            output_tokens=_whole(b.output_tokens, "outputTokens"),
            tokens_by_model=dict(cast(dict[str, Any], b.tokens_by_model or {})),
        ),
    )


Control = Callable[[AsyncSession, str, str | None], Awaitable[controls.ControlResult]]


async def _control(info: Info, call: Control) -> AgentControlPayload:
    """Run one control in a unit of work as the caller (actor, tenant), as a payload."""
    ctx = info.context
    actor = ctx.principal.subject if ctx.principal else "?"
    try:
        async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
            done = await call(session, actor, ctx.tenant_id)
    except DomainError as exc:
        return _failed(exc)
    return _payload(done)


@strawberry.type
class AgentMutations:
    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Report in (register or update) and receive the desired state.",
    )
    async def report_heartbeat(
        self, info: Info, agent_id: str, input: HeartbeatInput
    ) -> HeartbeatPayload:
        ctx = info.context
        try:
            beat = _beat(input)
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                agent, wanted = await registry.heartbeat(
                    session=session,
                    agent_id=agent_id,
                    beat=beat,
                    rules=ctx.state.settings.agent_rules,
                    tenant_id=ctx.tenant_id,
                )
                status = agent.observed_status or "healthy"
        except DomainError as exc:
            return HeartbeatPayload(
                agent_id=None,
                status=None,
                desired_state=None,
                errors=[AgentError(field=exc.field, code=exc.code, message=exc.message)],
            )
        return HeartbeatPayload(
            agent_id=agent_id,
            status=AgentStatus(status),
            desired_state=DesiredState(
                state=wanted.state,
                restart_generation=wanted.restart_generation,
                replicas=wanted.replicas,
                resume_at=wanted.resume_at,
            ),
            errors=[],
        )

    @strawberry.mutation(permission_classes=[CanOperate])
    async def pause_agent(
        self,
        info: Info,
        id: str,
        reason: str | None = None,
        duration_minutes: int | None = None,
    ) -> AgentControlPayload:
        rules = info.context.state.settings.agent_rules
        return await _control(
            info,
            lambda session, actor, tenant: controls.pause(
                session=session,
                agent_id=id,
                actor=actor,
                reason=reason,
                duration_minutes=duration_minutes,
                rules=rules,
                tenant_id=tenant,
            ),
        )

    @strawberry.mutation(permission_classes=[CanOperate])
    async def resume_agent(
        self, info: Info, id: str, reason: str | None = None
    ) -> AgentControlPayload:
        rules = info.context.state.settings.agent_rules
        return await _control(
            info,
            lambda session, actor, tenant: controls.resume(
                session=session,
                agent_id=id,
                actor=actor,
                reason=reason,
                rules=rules,
                tenant_id=tenant,
            ),
        )

    @strawberry.mutation(permission_classes=[CanOperate])
    async def restart_agent(
        self, info: Info, id: str, reason: str | None = None, force: bool = False
    ) -> AgentControlPayload:
        rules = info.context.state.settings.agent_rules
        return await _control(
            info,
            lambda session, actor, tenant: controls.restart(
                session=session,
                agent_id=id,
                actor=actor,
                reason=reason,
                force=force,
                rules=rules,
                tenant_id=tenant,
            ),
        )

    @strawberry.mutation(permission_classes=[CanOperate])
    async def scale_agent(
        self, info: Info, id: str, replicas: int, reason: str | None = None
    ) -> AgentControlPayload:
        rules = info.context.state.settings.agent_rules

        async def scale(
            session: AsyncSession, actor: str, tenant: str | None
        ) -> controls.ControlResult:
            done, _ = await controls.scale(
                session=session,
                agent_id=id,
                actor=actor,
                reason=reason,
                replicas=replicas,
                rules=rules,
                tenant_id=tenant,
            )
            return done

        return await _control(info, scale)
