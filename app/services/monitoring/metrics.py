"""Metric time series over the agents' heartbeat samples (opsgraph's own workers report there
too), bucketed in SQL by minute, hour or day in UTC, with empty buckets present as zeros so a
chart's time axis is honest. The same series feed GET /metrics and the exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.kernel.errors import InvalidInput
from app.platform import clock
from app.services.monitoring.rules import InvalidMetric

PERIODS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
GRANULARITIES = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
DEFAULT_GRANULARITY = {"1h": "minute", "24h": "hour", "7d": "hour", "30d": "day"}
FAMILIES = ("requests", "latency", "tokens", "errors")
MAX_BUCKETS = 1500  # a response's series; an export may hold more
MAX_EXPORT_BUCKETS = 100_000


@dataclass(frozen=True)
class Scope:
    agent_id: str | None = None
    tenant_id: str | None = None


@dataclass
class Bucket:
    timestamp: datetime
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    avg_latency_ms: float | None = None
    p95_latency_ms: float | None = None


@dataclass
class Report:
    start: datetime
    end: datetime
    granularity: str
    buckets: list[Bucket]
    by_agent: dict[str, int] = field(default_factory=dict)
    errors_by_type: dict[str, int] = field(default_factory=dict)
    latency: dict[str, float | None] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(b.requests for b in self.buckets)

    @property
    def errors(self) -> int:
        return sum(b.errors for b in self.buckets)

    @property
    def input_tokens(self) -> int:
        return sum(b.input_tokens for b in self.buckets)

    @property
    def output_tokens(self) -> int:
        return sum(b.output_tokens for b in self.buckets)


def families(metric: str | None) -> tuple[str, ...]:
    if metric is None:
        return FAMILIES
    if metric not in FAMILIES:
        raise InvalidMetric(
            f"unknown metric {metric!r}; known: {', '.join(FAMILIES)}", field="metric"
        )
    return (metric,)


def window(period: str, granularity: str | None) -> tuple[datetime, datetime, str]:
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
    g = granularity or DEFAULT_GRANULARITY[period]
    if g not in GRANULARITIES:
        raise InvalidInput(
            f"granularity must be one of {', '.join(GRANULARITIES)}", field="granularity"
        )
    if PERIODS[period] / GRANULARITIES[g] > MAX_BUCKETS:
        raise InvalidInput(
            f"{period} by {g} is more than {MAX_BUCKETS} points; choose a coarser granularity",
            field="granularity",
        )
    end = clock.now()
    return end - PERIODS[period], end, g


_SCOPE = """
  AND (CAST(:agent AS text) IS NULL OR s.agent_id = :agent)
  AND (CAST(:tenant AS text) IS NULL
       OR s.agent_id IN (SELECT id FROM agents WHERE tenant_id = :tenant))
"""

_SERIES = text(
    f"""
WITH b AS (
  SELECT generate_series(date_trunc(:g, CAST(:start AS timestamptz), 'UTC'),
                         CAST(:end AS timestamptz), CAST('1 ' || :g AS interval)) AS ts
), s AS (
  SELECT date_trunc(:g, s.at, 'UTC') AS ts, sum(s.requests) AS r, sum(s.errors) AS e,
         sum(s.input_tokens) AS ti, sum(s.output_tokens) AS tout,
         sum(s.latency_avg_ms * s.requests)
           / nullif(sum(s.requests) FILTER (WHERE s.latency_avg_ms IS NOT NULL), 0) AS reported,
         max(s.latency_p95_ms) AS reported95
  FROM agent_samples s WHERE s.at >= :start AND s.at <= :end {_SCOPE}
  GROUP BY 1
), l AS (
  SELECT date_trunc(:g, s.at, 'UTC') AS ts, avg(ms) AS a,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95
  FROM agent_samples s, unnest(s.latencies_ms) AS ms
  WHERE s.at >= :start AND s.at <= :end {_SCOPE}
  GROUP BY 1
)
SELECT b.ts, coalesce(s.r, 0), coalesce(s.e, 0), coalesce(s.ti, 0), coalesce(s.tout, 0),
       coalesce(l.a, s.reported), coalesce(l.p95, s.reported95)
FROM b LEFT JOIN s ON s.ts = b.ts LEFT JOIN l ON l.ts = b.ts
ORDER BY b.ts
"""
)

_LATENCY = text(
    f"""
SELECT avg(ms), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
FROM agent_samples s, unnest(s.latencies_ms) AS ms
WHERE s.at >= :start AND s.at <= :end {_SCOPE}
"""
)

_REPORTED_LATENCY = text(
    f"""
SELECT sum(s.latency_avg_ms * s.requests)
         / nullif(sum(s.requests) FILTER (WHERE s.latency_avg_ms IS NOT NULL), 0),
       max(s.latency_p95_ms), max(s.latency_p99_ms)
FROM agent_samples s WHERE s.at >= :start AND s.at <= :end {_SCOPE}
"""
)

_BY_AGENT = text(
    f"""
SELECT s.agent_id, sum(s.requests) FROM agent_samples s
WHERE s.at >= :start AND s.at <= :end {_SCOPE}
GROUP BY s.agent_id ORDER BY s.agent_id
"""
)

_ERRORS_BY_TYPE = text(
    f"""
SELECT e.key, sum(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value)::numeric ELSE 0 END)
FROM agent_samples s, jsonb_each(s.errors_by_type) AS e
WHERE s.at >= :start AND s.at <= :end {_SCOPE}
GROUP BY e.key ORDER BY e.key
"""
)


def _round(v: Any) -> float | None:
    return None if v is None else round(float(v), 2)


async def series(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    granularity: str,
    scope: Scope,
    max_buckets: int = MAX_EXPORT_BUCKETS,
) -> list[Bucket]:
    if granularity not in GRANULARITIES:
        raise InvalidInput(
            f"granularity must be one of {', '.join(GRANULARITIES)}", field="granularity"
        )
    if end < start:
        raise InvalidInput("the period ends before it starts", field="period")
    if (end - start) / GRANULARITIES[granularity] > max_buckets:
        raise InvalidInput(
            f"more than {max_buckets} {granularity}s; choose a coarser granularity",
            field="granularity",
        )
    params = _params(start, end, scope) | {"g": granularity}
    rows = (await session.execute(_SERIES, params)).all()
    return [
        Bucket(
            timestamp=ts,
            requests=int(r),
            errors=int(e),
            input_tokens=int(ti),
            output_tokens=int(to),
            avg_latency_ms=_round(avg),
            p95_latency_ms=_round(p95),
        )
        for ts, r, e, ti, to, avg, p95 in rows
    ]


def _params(start: datetime, end: datetime, scope: Scope) -> dict[str, Any]:
    return {"start": start, "end": end, "agent": scope.agent_id, "tenant": scope.tenant_id}


async def report(
    session: AsyncSession, *, period: str, granularity: str | None, scope: Scope
) -> Report:
    start, end, g = window(period, granularity)
    params = _params(start, end, scope)
    out = Report(
        start=start,
        end=end,
        granularity=g,
        buckets=await series(
            session, start=start, end=end, granularity=g, scope=scope, max_buckets=MAX_BUCKETS + 1
        ),
    )
    out.by_agent = {a: int(n or 0) for a, n in (await session.execute(_BY_AGENT, params)).all()}
    out.errors_by_type = {
        k: int(n or 0) for k, n in (await session.execute(_ERRORS_BY_TYPE, params)).all()
    }
    avg, p50, p95, p99 = (await session.execute(_LATENCY, params)).one()
    if avg is None:
        avg, p95, p99 = (await session.execute(_REPORTED_LATENCY, params)).one()
    out.latency = {"avg": _round(avg), "p50": _round(p50), "p95": _round(p95), "p99": _round(p99)}
    return out
