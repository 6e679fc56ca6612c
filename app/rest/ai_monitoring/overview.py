"""Seed 004's dashboard and system health."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from app.platform import clock
from app.rest.ai_monitoring.errors import fail
from app.rest.deps import Reader, State
from app.rest.refusals import reading
from app.services.fleet import health
from app.services.monitoring import dashboard as dashboards

router = APIRouter(prefix="/api/v1/monitoring", tags=["AI Monitoring: overview"])

try:
    VERSION = version("opsgraph")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"


@router.get("/dashboard", summary="Get Dashboard Summary")
async def get_dashboard(
    state: State,
    principal: Reader,
    tenant_id: Annotated[str | None, Query(max_length=255)] = None,
    period: Literal["1h", "24h", "7d"] = "24h",
) -> Any:
    """A tenant-scoped credential sees its own tenant whatever `tenant_id` says."""
    async with reading(state, fail) as session:
        d = await dashboards.dashboard(
            session=session,
            period=period,
            tenant_id=principal.tenant_for(tenant_id),
            prices=state.settings.prices,
        )
    r = d.report
    ok = r.requests - r.errors
    return {
        "generated_at": d.generated_at,
        "period": d.period,
        "summary": {
            "total_agents": d.total_agents,
            "healthy": d.statuses["healthy"],
            "degraded": d.statuses["degraded"],
            "offline": d.statuses["offline"],
            "paused": d.statuses["paused"],
            "health_score": d.health_score,
        },
        "metrics": {
            "total_requests": r.requests,
            "successful_requests": ok,
            "failed_requests": r.errors,
            "success_rate": round(ok / r.requests * 100, 2) if r.requests else None,
            "avg_latency_ms": r.latency["avg"],
            "p95_latency_ms": r.latency["p95"],
            "p99_latency_ms": r.latency["p99"],
        },
        "costs": {
            "total_tokens": sum(c.tokens for c in d.costs),
            "input_tokens": sum(c.input_tokens for c in d.costs),
            "output_tokens": sum(c.output_tokens for c in d.costs),
            "estimated_cost_usd": round(sum(c.cost for c in d.costs), 4),
            "cost_by_model": [
                {"model": c.model, "tokens": c.tokens, "cost": c.cost} for c in d.costs
            ],
        },
        "active_alerts": d.active_alerts,
        "top_issues": d.top_issues,
    }


@router.get("/health", summary="Get System Health")
async def get_health(state: State, principal: Reader) -> JSONResponse:
    """Real checks: this API process, PostgreSQL and Redis (round-trip latency), live workers,
    and each model provider (probed over HTTP with its circuit breaker; simulated ones are
    healthy by construction). 503 when PostgreSQL or Redis is down."""
    started = time.perf_counter()
    found = await state.health.current(tenant_id=principal.tenant_id)

    def component(name: str, c: health.Check) -> dict[str, Any]:
        return {"name": name, "status": c.status, "latency_ms": c.latency_ms, **c.detail}

    db, cache, workers = found.checks["postgresql"], found.checks["redis"], found.checks["workers"]
    # seed 004's components first, mapped onto opsgraph's real checks (README: "Seed 004's
    # health"), then opsgraph's own under their own names
    components = [
        {
            "name": "api",
            "status": "healthy",
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        },
        {
            # the gateway to the models: the workers that run model calls off the LLM queue
            "name": "ai_gateway",
            "status": workers.status,
            "latency_ms": cache.latency_ms,
            "workers": workers.detail.get("count", 0),
        },
        {
            "name": "model_providers",
            "status": _worst([c.status for c in found.models.values()]),
            "providers": [{"name": name, **component(name, c)} for name, c in found.models.items()],
        },
        {
            "name": "vector_db",
            "status": db.status,
            "latency_ms": db.latency_ms,
            "backend": "postgresql",
        },
        {
            "name": "cache",
            "status": cache.status,
            "latency_ms": cache.latency_ms,
            "hit_rate": cache.detail.get("hit_rate"),
            "backend": "redis",
        },
        *(component(name, c) for name, c in found.checks.items()),
    ]
    body = {
        "status": found.status,
        "timestamp": clock.now().isoformat(),
        "components": components,
        "version": VERSION,
    }
    return JSONResponse(body, status_code=503 if found.status == "unhealthy" else 200)


def _worst(statuses: list[str]) -> str:
    for s in ("unhealthy", "degraded"):
        if s in statuses:
            return s
    return "healthy"
