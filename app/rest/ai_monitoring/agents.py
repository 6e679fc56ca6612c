"""Seed 004's agent endpoints (/api/v1/monitoring/agents): heartbeat (beyond the seed), list,
detail, pause, resume, restart, scale. Errors carry the seed's codes: 404 `agent_not_found`,
409 `agent_already_paused`, 403 `insufficient_permissions`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, Strict, StrictBool, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.uow import read_only, unit_of_work
from app.kernel.errors import DomainError, NotFound
from app.platform import clock
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Operator, Reader, State
from app.rest.params import JsonInt, json_integer
from app.services.agents import controls, queries, registry

T = TypeVar("T")

router = APIRouter(prefix="/api/v1/monitoring/agents", tags=["AI Agents"])

AgentId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
Text = Annotated[str, Field(max_length=2000)]
SEED_ERRORS = documented((404, "agent_not_found"), (409, "agent_already_paused"))


# --- heartbeat --------------------------------------------------------------------------------


# one request's latency: a number (not a numeric string), at most an hour
Millis = Annotated[float, Strict(), Field(ge=0, le=3_600_000)]


class Check(BaseModel):
    name: Text
    status: Literal["pass", "warn", "fail"]
    latency_ms: Millis | None = None
    value: Any = None


class Latency(BaseModel):
    avg: Millis | None = None
    p50: Millis | None = None
    p95: Millis | None = None
    p99: Millis | None = None


# bounds before the validator, or JSON Schema gets `ge`/`le` instead of minimum/maximum
TokenCount = Annotated[int, Field(ge=0, le=10**15), BeforeValidator(json_integer)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1), BeforeValidator(json_integer)]


class ModelTokens(BaseModel):
    input: JsonInt = Field(0, ge=0, le=10**15)
    output: JsonInt = Field(0, ge=0, le=10**15)


class Tokens(BaseModel):
    input: JsonInt = Field(0, ge=0, le=10**15)
    output: JsonInt = Field(0, ge=0, le=10**15)
    by_model: dict[str, TokenCount | ModelTokens] = Field(
        default_factory=dict,
        max_length=100,
        description="Per model: {input, output} (costed by the price table) or a bare total"
        " (costed at the input price)",
    )


class BeatMetrics(BaseModel):
    requests: JsonInt = Field(0, ge=0, le=2**31 - 1)
    errors: JsonInt = Field(0, ge=0, le=2**31 - 1)
    errors_by_type: dict[str, Count] = Field(default_factory=dict, max_length=100)
    latency_ms: list[Millis] = Field(default_factory=list, max_length=registry.MAX_LATENCIES)
    latency: Latency | None = None
    tokens: Tokens = Field(default_factory=Tokens)


class HeartbeatIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    version: str | None = Field(None, max_length=64)
    location_id: str | None = Field(None, max_length=128)
    tenant_id: str | None = Field(None, max_length=255)
    state: Literal["running", "starting", "stopping"] = "running"
    configuration: dict[str, Any] = Field(default_factory=dict)
    health: dict[str, list[Check]] = Field(default_factory=dict, description='{"checks": [...]}')
    dependencies: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    issues: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    metrics: BeatMetrics = Field(default_factory=BeatMetrics)


class DesiredOut(BaseModel):
    state: str
    restart_generation: int
    replicas: int
    resume_at: datetime | None


class HeartbeatOut(BaseModel):
    agent_id: str
    status: str
    desired_state: DesiredOut


@router.post(
    "/{agent_id}/heartbeat",
    response_model=HeartbeatOut,
    responses={**SEED_ERRORS, **documented((409, "agent_id_taken"))},
    summary="Agent heartbeat (report in; receive the desired state)",
)
async def heartbeat(agent_id: AgentId, body: HeartbeatIn, state: State, principal: Operator) -> Any:
    m = body.metrics
    beat = registry.Heartbeat(
        name=body.name,
        type=body.type,
        version=body.version,
        location_id=body.location_id,
        tenant_id=body.tenant_id,
        state=body.state,
        configuration=body.configuration,
        health_checks=[c.model_dump() for c in body.health.get("checks", [])],
        dependencies=body.dependencies,
        issues=body.issues,
        metrics=registry.Metrics(
            requests=m.requests,
            errors=m.errors,
            errors_by_type=m.errors_by_type,
            latencies_ms=m.latency_ms,
            latency_avg_ms=m.latency.avg if m.latency else None,
            latency_p95_ms=m.latency.p95 if m.latency else None,
            latency_p99_ms=m.latency.p99 if m.latency else None,
            input_tokens=m.tokens.input,
            output_tokens=m.tokens.output,
            tokens_by_model={
                k: v.model_dump() if isinstance(v, ModelTokens) else v
                for k, v in m.tokens.by_model.items()
            },
        ),
    )
    rules = state.settings.agent_rules
    try:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            agent, wanted = await registry.heartbeat(
                session=session,
                agent_id=agent_id,
                beat=beat,
                rules=rules,
                tenant_id=principal.tenant_id,
            )
            current = agent.observed_status or "healthy"
    except DomainError as exc:
        return fail(exc)
    return HeartbeatOut(
        agent_id=agent_id, status=current, desired_state=DesiredOut(**wanted.__dict__)
    )


# --- reading --------------------------------------------------------------------------------


def _summary(v: queries.AgentView) -> dict[str, Any]:
    a, f = v.agent, v.figures
    out: dict[str, Any] = {
        "id": a.id,
        "name": a.name,
        "type": a.type,
        "status": v.status,
        "version": a.version,
        "location_id": a.location_id,
        "tenant_id": a.tenant_id,
        "metrics": {
            "uptime_percent": f.uptime_percent,
            "requests_24h": f.requests,
            "avg_latency_ms": f.avg_latency_ms,
            "error_rate": f.error_rate if f.error_rate is not None else 0.0,
        },
        "last_heartbeat": a.last_heartbeat_at,
        "started_at": a.started_at,
        "desired_state": {"state": a.desired_state, "replicas": a.replicas},
    }
    if v.issues:
        out["issues"] = v.issues
    return out


@router.get("", summary="List Agents")
async def list_agents(
    state: State,
    principal: Reader,
    status: Literal["healthy", "degraded", "offline", "paused", "starting", "stopping"]
    | None = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    tenant_id: Annotated[str | None, Query(max_length=255)] = None,
) -> Any:
    scope = principal.tenant_id or tenant_id
    if principal.tenant_id is not None and tenant_id not in (None, principal.tenant_id):
        return {"agents": [], "total": 0}
    async with read_only(state.sessionmaker) as session:
        views = await queries.list_agents(
            session=session,
            rules=state.settings.agent_rules,
            status=status,
            type=type,
            tenant_id=scope,
        )
    return {"agents": [_summary(v) for v in views], "total": len(views)}


@router.get("/{agent_id}", responses=SEED_ERRORS, summary="Get Agent Details")
async def get_agent(agent_id: AgentId, state: State, principal: Reader) -> Any:
    rules = state.settings.agent_rules
    async with read_only(state.sessionmaker) as session:
        try:
            agent = await registry.get_agent(
                session=session, agent_id=agent_id, tenant_id=principal.tenant_id
            )
        except NotFound as exc:
            return fail(exc)
        now = clock.now()
        figures = (await queries.figures_for(session, [agent], now=now, rules=rules))[agent.id]
        v = queries.view(agent, figures, now=now, rules=rules)
        hours = await queries.hourly(session, agent.id, now=now)
        by_model = await queries.tokens_by_model(session, agent.id, now=now)
        errors = await queries.recent_errors(session, agent.id)
    checks = agent.health_checks
    return {
        **_summary(v),
        "configuration": agent.configuration,
        "health": {
            "status": v.status,
            "last_check": agent.last_heartbeat_at,
            "checks": checks,
        },
        "metrics_detailed": {
            "requests": {
                "total": figures.requests,
                "successful": figures.requests - figures.errors,
                "failed": figures.errors,
                "by_hour": [
                    {"timestamp": h.timestamp, "value": h.requests, "errors": h.errors}
                    for h in hours
                ],
            },
            "latency": {
                "avg_ms": figures.avg_latency_ms,
                "p50_ms": figures.p50_latency_ms,
                "p95_ms": figures.p95_latency_ms,
                "p99_ms": figures.p99_latency_ms,
                "by_hour": [
                    {
                        "timestamp": h.timestamp,
                        "avg_ms": h.avg_latency_ms,
                        "p95_ms": h.p95_latency_ms,
                    }
                    for h in hours
                ],
            },
            "tokens": {
                "input": figures.input_tokens,
                "output": figures.output_tokens,
                "by_model": by_model,
            },
        },
        "recent_errors": errors,
        "dependencies": agent.dependencies,
        "restart_generation": agent.restart_generation,
        "replicas": agent.replicas,
        "paused_at": agent.paused_at,
        "resume_at": agent.resume_at,
    }


# --- controls -------------------------------------------------------------------------------


class PauseIn(BaseModel):
    reason: Text | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=controls.MAX_PAUSE_MINUTES)] | None = None

    @field_validator("duration_minutes", mode="before")
    @classmethod
    def _integer(cls, value: Any) -> Any:
        return json_integer(value)


class ReasonIn(BaseModel):
    reason: Text | None = None


class RestartIn(BaseModel):
    reason: Text | None = None
    force: StrictBool = False


class ScaleIn(BaseModel):
    replicas: JsonInt = Field(ge=0, le=controls.MAX_REPLICAS)
    reason: Text | None = None


async def _control(state: Any, call: Callable[[AsyncSession], Awaitable[T]]) -> T | JSONResponse:
    """One control in a unit of work; a refusal as seed 004's coded error."""
    try:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            return await call(session)
    except DomainError as exc:
        return fail(exc)


@router.post("/{agent_id}/pause", responses=SEED_ERRORS, summary="Pause Agent")
async def pause_agent(
    agent_id: AgentId, state: State, principal: Operator, body: PauseIn | None = None
) -> Any:
    wanted = body or PauseIn()
    done = await _control(
        state,
        lambda session: controls.pause(
            session=session,
            agent_id=agent_id,
            actor=principal.subject,
            reason=wanted.reason,
            duration_minutes=wanted.duration_minutes,
            rules=state.settings.agent_rules,
            tenant_id=principal.tenant_id,
        ),
    )
    if isinstance(done, JSONResponse):
        return done
    return {
        "agent_id": agent_id,
        "previous_status": done.previous_status,
        "current_status": "paused",
        "paused_at": done.at,
        "resume_at": done.agent.resume_at,
        # the agent drains its requests when its next heartbeat tells it to pause
        "active_requests_drained": False,
    }


@router.post("/{agent_id}/resume", responses=SEED_ERRORS, summary="Resume Agent")
async def resume_agent(
    agent_id: AgentId, state: State, principal: Operator, body: ReasonIn | None = None
) -> Any:
    done = await _control(
        state,
        lambda session: controls.resume(
            session=session,
            agent_id=agent_id,
            actor=principal.subject,
            reason=(body or ReasonIn()).reason,
            rules=state.settings.agent_rules,
            tenant_id=principal.tenant_id,
        ),
    )
    if isinstance(done, JSONResponse):
        return done
    return {
        "agent_id": agent_id,
        "previous_status": done.previous_status,
        "current_status": "healthy" if done.previous_status == "paused" else done.previous_status,
        "resumed_at": done.at,
    }


@router.post("/{agent_id}/restart", responses=SEED_ERRORS, summary="Restart Agent")
async def restart_agent(
    agent_id: AgentId, state: State, principal: Operator, body: RestartIn | None = None
) -> Any:
    wanted = body or RestartIn()
    done = await _control(
        state,
        lambda session: controls.restart(
            session=session,
            agent_id=agent_id,
            actor=principal.subject,
            reason=wanted.reason,
            force=wanted.force,
            rules=state.settings.agent_rules,
            tenant_id=principal.tenant_id,
        ),
    )
    if isinstance(done, JSONResponse):
        return done
    return {
        "agent_id": agent_id,
        "previous_status": done.previous_status,
        "restart_generation": done.agent.restart_generation,
        "force": wanted.force,
        "requested_at": done.at,
    }


@router.post("/{agent_id}/scale", responses=SEED_ERRORS, summary="Scale Agent")
async def scale_agent(agent_id: AgentId, body: ScaleIn, state: State, principal: Operator) -> Any:
    scaled = await _control(
        state,
        lambda session: controls.scale(
            session=session,
            agent_id=agent_id,
            actor=principal.subject,
            reason=body.reason,
            replicas=body.replicas,
            rules=state.settings.agent_rules,
            tenant_id=principal.tenant_id,
        ),
    )
    if isinstance(scaled, JSONResponse):
        return scaled
    done, before = scaled
    return {
        "agent_id": agent_id,
        "previous_replicas": before,
        "replicas": done.agent.replicas,
        "requested_at": done.at,
    }
