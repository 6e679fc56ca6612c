"""Seed 004's agent endpoints (/api/v1/monitoring/agents): list and detail here; the heartbeat
(beyond the seed) in heartbeat.py, pause, resume, restart and scale in controls.py. Errors carry
the seed's codes: 404 `agent_not_found`, 409 `agent_already_paused`, 403
`insufficient_permissions`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from app.auth.principals import OtherTenant
from app.edge.uow import read_only
from app.platform import clock
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Reader, State
from app.rest.refusals import reading
from app.services.agents import queries, registry

PREFIX = "/api/v1/monitoring/agents"
TAG = "AI Agents"
router = APIRouter(prefix=PREFIX, tags=[TAG])

AgentId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
Text = Annotated[str, Field(max_length=2000)]
SEED_ERRORS = documented((404, "agent_not_found"), (409, "agent_already_paused"))


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
    try:
        scope = principal.tenant_for(tenant_id, strict=True)
    except OtherTenant:
        return {"agents": [], "total": 0}  # none of another tenant's agents is the caller's
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
    async with reading(state, fail) as session:
        agent = await registry.get_agent(
            session=session, agent_id=agent_id, tenant_id=principal.tenant_id
        )
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
