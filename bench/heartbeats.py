"""Seed 004 at load: heartbeats accepted per second by one API process (each beat carrying 10
latency samples, tokens by model and health checks), next to `GET /healthz` on the same
process with the same clients in the same run; and log search p50 over 1,000,000 log lines,
through the API (HTTP) next to the bare SQL query it runs (asyncpg, same database, same run).

    python -m bench.heartbeats [--agents 200] [--clients 16] [--seconds 10] [--logs 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

import asyncpg
import httpx

from bench.harness import fresh_stores, serve

WORDS = [
    "timeout", "retry", "model", "fallback", "speech", "vision", "token", "upstream", "cache",
    "session", "camera", "frame", "latency", "queue", "worker", "audio", "noisy", "gateway",
    "quota", "refused", "served", "greeting", "transcript", "embedding", "prompt", "safety",
]  # fmt: skip

FILL_LOGS = """
INSERT INTO agent_logs (at, level, level_no, agent_id, tenant_id, message, context, trace_id,
  received_at)
SELECT now() - (i || ' seconds')::interval,
  (ARRAY['debug','info','warn','error'])[1 + i % 4], (1 + i % 4) * 10,
  'agent_' || (i % 200), NULL,
  w[1 + (i * 7) % cardinality(w)] || ' ' || w[1 + (i * 13) % cardinality(w)] || ' request '
    || (i % 1000),
  jsonb_build_object('session_id', 'sess_' || (i % 5000),
                     'error_code', upper(w[1 + (i * 3) % cardinality(w)])),
  'trace_' || i, now()
FROM generate_series(1, $1) AS i, (SELECT $2::text[] AS w) AS words
"""

# what GET /logs?search=<q>&limit=100 runs (app.services.monitoring.logs.search)
BARE_SEARCH = """SELECT id, at, level, level_no, agent_id, tenant_id, message, context, trace_id,
  received_at FROM agent_logs WHERE search @@ websearch_to_tsquery('simple', $1)
ORDER BY at DESC, id DESC LIMIT 100"""


def heartbeat(rng: random.Random) -> dict[str, Any]:
    return {
        "name": "bench agent",
        "type": "bench",
        "version": "1.0.0",
        "health": {"checks": [{"name": "model_connection", "status": "pass", "latency_ms": 12}]},
        "metrics": {
            "requests": 40,
            "errors": 1,
            "errors_by_type": {"timeout": 1},
            "latency_ms": [round(rng.uniform(50, 900), 1) for _ in range(10)],
            "tokens": {
                "input": 4000,
                "output": 1200,
                "by_model": {"gpt-4o-mini": {"input": 4000, "output": 1200}},
            },
        },
    }


async def rate(
    base: str, token: str, clients: int, seconds: float, request: Any
) -> tuple[float, list[float]]:
    """Requests per second that `clients` concurrent loops complete in `seconds`."""
    latencies: list[float] = []
    done = 0
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=clients),
    ) as http:
        for i in range(clients):  # warm-up: connections, caches
            await request(http, i)
        deadline = time.perf_counter() + seconds

        async def loop(i: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                await request(http, i)
                latencies.append((time.perf_counter() - t) * 1000)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return done / elapsed, latencies


async def measure_beats(
    base: str, token: str, agents: int, clients: int, seconds: float
) -> dict[str, Any]:
    rng = random.Random(4)
    bodies = [heartbeat(rng) for _ in range(64)]
    counter = 0

    async def beat(http: httpx.AsyncClient, i: int) -> None:
        nonlocal counter
        counter += 1
        r = await http.post(
            f"/api/v1/monitoring/agents/bench_{counter % agents}/heartbeat",
            json=bodies[counter % len(bodies)],
        )
        assert r.status_code == 200, r.text

    async def healthz(http: httpx.AsyncClient, i: int) -> None:
        r = await http.get("/healthz")
        assert r.status_code == 200

    base_rate, base_lat = await rate(base, token, clients, seconds, healthz)
    beat_rate, beat_lat = await rate(base, token, clients, seconds, beat)
    return {
        "healthz_per_s": round(base_rate, 1),
        "heartbeats_per_s": round(beat_rate, 1),
        "heartbeat_ratio": round(beat_rate / base_rate, 3),
        "heartbeat_ms_p50": round(statistics.median(beat_lat), 2),
        "healthz_ms_p50": round(statistics.median(base_lat), 2),
    }


async def measure_search(base: str, dsn: str, token: str, repeat: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    out: dict[str, Any] = {}
    # what any request costs here: one sequential HTTP round trip to /healthz
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        trips = []
        for i in range(repeat + 3):
            t = time.perf_counter()
            await http.get("/healthz")
            if i >= 3:
                trips.append((time.perf_counter() - t) * 1000)
    trip = statistics.median(trips)
    out["healthz_round_trip_ms_p50"] = round(trip, 2)
    # a word in ~1 line in 26 (common), and a session id in 1 line in 5,000 (rare)
    for label, q in (("common", "timeout"), ("rare", "sess_4242")):
        bare, api = [], []
        for i in range(repeat + 3):
            t = time.perf_counter()
            rows = await conn.fetch(BARE_SEARCH, q)
            if i >= 3:
                bare.append((time.perf_counter() - t) * 1000)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            for i in range(repeat + 3):
                t = time.perf_counter()
                r = await http.get("/api/v1/monitoring/logs", params={"search": q, "limit": 100})
                if i >= 3:
                    api.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and r.json()["count"] == len(rows)
        b, a = statistics.median(bare), statistics.median(api)
        out[f"search_{label}_bare_sql_ms_p50"] = round(b, 2)
        out[f"search_{label}_api_ms_p50"] = round(a, 2)
        out[f"search_{label}_ratio"] = round(a / b, 2)
        # the search's own cost in the API: its time less a bare round trip, against the SQL
        out[f"search_{label}_server_ratio"] = round(max(a - trip, b) / b, 2)
        out[f"search_{label}_matches_returned"] = len(rows)
    await conn.close()
    return out


def main(agents: int, clients: int, seconds: float, log_lines: int, repeat: int) -> dict[str, Any]:
    with fresh_stores() as (stores, folder):
        dsn = stores.database_url.replace("postgresql+asyncpg://", "postgresql://")
        stack = serve(stores, folder)
        try:
            token = stack.token("platform_admin")
            beats = asyncio.run(measure_beats(stack.base, token, agents, clients, seconds))

            async def fill() -> float:
                conn = await asyncpg.connect(dsn)
                t = time.perf_counter()
                await conn.execute(FILL_LOGS, log_lines, WORDS)
                await conn.execute("ANALYZE agent_logs")
                await conn.close()
                return time.perf_counter() - t

            filled = asyncio.run(fill())
            search = asyncio.run(measure_search(stack.base, dsn, token, repeat))
        finally:
            stack.proc.stop()
    return {
        "benchmark": "heartbeats",
        **beats,
        "log_lines": log_lines,
        "fill_seconds": round(filled, 1),
        **search,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    f = main(args.agents, args.clients, args.seconds, args.logs, args.repeat)
    print(f"{'measure':<36}{'value':>12}")
    for key, value in f.items():
        if key != "benchmark" and value is not None:
            print(f"{key:<36}{value:>12}")
    print(json.dumps(f))
