"""System health (seed 002's /api/system/health, seed 004's /api/v1/monitoring/health):
PostgreSQL, Redis, live workers, and each model service with its circuit breaker. HTTP model
services are probed with a short timeout; simulated ones are healthy by construction. Probes
run at most once per cache period per process (readers cannot amplify load onto the model
services), and a tenant sees statuses and latencies only (no URL, host name or error text)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.services.fleet import heartbeats
from app.services.fleet.breakers import Breakers, BreakerState

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ModelService:
    name: str
    role: str  # detection | enrichment | analysis
    backend: str  # http | simulated
    probe_url: str | None  # None: simulated


@dataclass
class Check:
    status: str  # healthy | degraded | unhealthy
    latency_ms: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


async def _timed(probe: Any) -> tuple[bool, float, str | None]:
    started = time.perf_counter()
    try:
        await probe
        return True, (time.perf_counter() - started) * 1000, None
    except Exception as exc:
        return False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"[:300]


async def _database(engine: AsyncEngine) -> Check:
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    ok, ms, error = await _timed(asyncio.wait_for(probe(), PROBE_TIMEOUT))
    return Check("healthy" if ok else "unhealthy", round(ms, 2), {"error": error} if error else {})


async def _redis(redis: Redis) -> Check:
    ok, ms, error = await _timed(asyncio.wait_for(redis.ping(), PROBE_TIMEOUT))  # type: ignore[arg-type]
    if not ok:
        return Check("unhealthy", round(ms, 2), {"error": error})
    detail: dict[str, Any] = {}
    try:
        stats = await asyncio.wait_for(redis.info("stats"), PROBE_TIMEOUT)
        hits, misses = int(stats.get("keyspace_hits", 0)), int(stats.get("keyspace_misses", 0))
        # lookups that found their key, since the server started (None before any lookup)
        detail["hit_rate"] = round(hits / (hits + misses), 4) if hits + misses else None
    except Exception:
        detail["hit_rate"] = None
    return Check("healthy", round(ms, 2), detail)


async def _workers(redis: Redis) -> Check:
    try:
        live = await heartbeats.live_workers(redis)
    except Exception as exc:
        return Check("unhealthy", None, {"error": type(exc).__name__, "count": 0})
    return Check(
        "healthy" if live else "unhealthy",
        None,
        {"count": len(live), "names": sorted(w.name for w in live)},
    )


async def _model(service: ModelService, breaker: BreakerState, http: httpx.AsyncClient) -> Check:
    detail: dict[str, Any] = {
        "role": service.role,
        "backend": service.backend,
        "circuit_breaker": breaker.state,
        "failure_count": breaker.failure_count,
    }
    latency = None
    reachable = True
    if service.probe_url:
        detail["url"] = service.probe_url

        async def probe(url: str) -> None:
            # a service that answers an error status is not healthy either
            (await http.get(url, timeout=PROBE_TIMEOUT)).raise_for_status()

        ok, ms, error = await _timed(probe(service.probe_url))
        reachable, latency = ok, round(ms, 2)
        if error:
            detail["error"] = error
    status = (
        "unhealthy"
        if not reachable or breaker.state == "open"
        else "degraded"
        if breaker.state == "half_open"
        else "healthy"
    )
    return Check(status, latency, detail)


@dataclass(frozen=True)
class Health:
    status: str
    checks: dict[str, Check]
    models: dict[str, Check]


async def system_health(
    *,
    engine: AsyncEngine,
    redis: Redis,
    breakers: Breakers,
    services: list[ModelService],
) -> Health:
    async with httpx.AsyncClient() as http:
        try:
            states = {b.name: b for b in await breakers.states([s.name for s in services])}
        except Exception:
            states = {}
        unknown = BreakerState("", "unknown", 0, 0, 0, 0, None, None, None)
        db, rd, workers, *models = await asyncio.gather(
            _database(engine),
            _redis(redis),
            _workers(redis),
            *(_model(s, states.get(s.name, unknown), http) for s in services),
        )
    core = {"postgresql": db, "redis": rd, "workers": workers}
    by_name = {s.name: m for s, m in zip(services, models, strict=True)}
    if any(c.status == "unhealthy" for c in (db, rd)):
        overall = "unhealthy"
    elif any(c.status != "healthy" for c in [workers, *models]):
        overall = "degraded"
    else:
        overall = "healthy"
    return Health(status=overall, checks=core, models=by_name)


# what a tenant may read of a check's detail: statuses and counts, nothing that names an
# internal URL, host or address, and no probe error text (it can quote either)
TENANT_DETAIL = frozenset(
    {"role", "backend", "circuit_breaker", "failure_count", "count", "hit_rate"}
)


def for_tenant(found: Health) -> Health:
    def strip(c: Check) -> Check:
        return replace(c, detail={k: v for k, v in c.detail.items() if k in TENANT_DETAIL})

    return Health(
        status=found.status,
        checks={n: strip(c) for n, c in found.checks.items()},
        models={n: strip(c) for n, c in found.models.items()},
    )


class HealthCache:
    """The last probe's answer, kept `ttl` seconds; concurrent callers share one probe.
    Bound: one Health per process."""

    def __init__(self, ttl: float, probe: Callable[[], Awaitable[Health]]) -> None:
        self.ttl = ttl
        self._probe = probe
        self._at = -float("inf")
        self._found: Health | None = None
        self._lock = asyncio.Lock()

    async def current(self, *, tenant_id: str | None = None) -> Health:
        """The health now; for a tenant-scoped caller, statuses and latencies only."""
        async with self._lock:
            now = time.monotonic()
            if self._found is None or now - self._at >= self.ttl:
                self._found = await self._probe()
                self._at = time.monotonic()
            found = self._found
        return found if tenant_id is None else for_tenant(found)
