"""`tasks(first: 50, filter)` over 1,000,000 rows: server time of the GraphQL query (executed
in-process, as the API does, without HTTP) against the bare SQL query the list needs, run with
asyncpg on the same database in the same run; the loopback HTTP round trip is shown too.

Deep pages: the 10,000th page of `tasks(first: 50)` (reached with a keyset cursor) against the
first page, and the OFFSET query the cursor replaces.

    python -m bench.task_list [--rows 1000000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import asyncpg
import httpx

from app.auth.principals import Principal
from app.config import Settings
from app.edge.state import open_state
from app.gql.context import Context
from app.gql.pagination import cursor_tag, encode_cursor
from app.gql.schema import build_schema
from app.gql.tasks import TaskFilter
from app.kernel.paging import Keyset
from bench.harness import fresh_stores, serve

FILL = """
INSERT INTO tasks (id, task_type, operation, status, queue, priority, origin_instance,
  origin_zone, origin_tenant_id, input, config, metadata, errors, attempts, max_attempts,
  retry_count, dead_lettered, is_resumed, resume_attempt_count, progress, progress_history,
  input_tokens, output_tokens, cost_usd, created_at, updated_at, media, service_requests,
  started_at, completed_at, provider, model, latency_ms)
SELECT gen_random_uuid(),
  (ARRAY['llm','echo'])[1 + i % 2], 'chat_completion',
  (ARRAY['QUEUED','RUNNING','COMPLETED','FAILED','CANCELLED'])[1 + i % 5],
  (ARRAY['llm','operations','default'])[1 + i % 3], i % 100, 'cam-' || (i % 50),
  (ARRAY['eu','us'])[1 + i % 2], NULL, '{}', '{}', '{}', '[]', 1, 4, 0, false, false, 0, 0,
  '[]', i % 2 * 40, i % 2 * 60, i % 2 * 0.0004, now() - (i || ' seconds')::interval, now(),
  '{}', '[]',
  CASE WHEN i % 5 > 0 THEN now() - (i || ' seconds')::interval + interval '1 second' END,
  CASE WHEN i % 5 > 1 THEN now() - (i || ' seconds')::interval + interval '3 seconds' END,
  CASE WHEN i % 5 > 1 THEN 'simulated' END, CASE WHEN i % 5 > 1 THEN 'simulated-chat' END,
  CASE WHEN i % 5 > 1 THEN 2000 END
FROM generate_series(1, $1) AS i
"""

# The aggregate figures read the counters and rollups (migration 0014); next to each, the
# scan it replaces (what the services ran before), bare on asyncpg.
BASELINE = "GET /healthz (baseline)"
FIGURES = {
    BASELINE: ("GET", "/healthz", None),
    "/monitoring/queues": ("GET", "/api/v1/monitoring/queues", None),
    "/monitoring/stats": ("GET", "/api/v1/monitoring/stats", None),
    "/llm/stats": ("GET", "/api/v1/llm/stats", None),
    "/v1/metrics (seed 003)": ("GET", "/api/v1/metrics", None),
    "queueStats": ("POST", "/graphql", "{ queueStats { totalPending queues { name depth } } }"),
    "taskStats": ("POST", "/graphql", "{ taskStats { totalTasks tasksLastHour } }"),
    "llmStats": ("POST", "/graphql", "{ llmStats { totalQueued totalTokens } }"),
}
SCANS = {
    "queue figures scan": """
SELECT queue, count(*) FILTER (WHERE status = 'QUEUED'), count(*) FILTER (WHERE status =
  'RUNNING'), avg(extract(epoch FROM started_at - created_at)) FILTER (WHERE started_at >=
  now() - interval '1 hour'), count(*) FILTER (WHERE status = 'COMPLETED' AND completed_at >=
  now() - interval '1 hour')
FROM tasks WHERE status IN ('QUEUED', 'RUNNING') OR updated_at >= now() - interval '1 hour'
GROUP BY queue""",
    "stats scan": """
SELECT status, provider, task_type, count(*), count(*) FILTER (WHERE created_at >= now() -
  interval '1 hour'), count(*) FILTER (WHERE created_at >= now() - interval '24 hours')
FROM tasks GROUP BY GROUPING SETS ((status), (provider), (task_type))""",
}

QUERY = """query($filter: TaskFilter) { tasks(first: 50, filter: $filter) {
  edges { node { id status taskType queue priority createdAt } } } }"""
FILTER = {"status": ["COMPLETED"], "queue": ["llm"], "originZone": "eu"}
BARE = """SELECT * FROM tasks WHERE status = ANY($1) AND queue = ANY($2) AND origin_zone = $3
ORDER BY created_at DESC, id DESC LIMIT 51"""

DEEP_PAGE = 10_000
PAGE_QUERY = """query($after: String) { tasks(first: 50, after: $after) {
  edges { node { id status taskType queue priority createdAt } } pageInfo { endCursor } } }"""
BOUNDARY = """SELECT created_at, id FROM tasks ORDER BY created_at DESC, id DESC
OFFSET $1 LIMIT 1"""
BARE_OFFSET = "SELECT * FROM tasks ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 51"


async def in_process(
    settings: Settings, repeat: int, query: str, variables: dict[str, Any]
) -> list[float]:
    """A GraphQL query executed inside a process like the API's: no HTTP, no JSON."""
    schema = build_schema(settings)
    out = []
    async with open_state(settings, listen=False) as state:
        for i in range(repeat + 3):
            context = Context(state=state, principal=Principal(subject="bench", role="viewer"))
            t = time.perf_counter()
            result = await schema.execute(query, variable_values=variables, context_value=context)
            elapsed = (time.perf_counter() - t) * 1000
            assert result.errors is None and len(result.data["tasks"]["edges"]) == 50  # type: ignore[index]
            if i >= 3:
                out.append(elapsed)
    return out


async def deep_cursor(conn: asyncpg.Connection) -> str:
    """The cursor a client holds after walking 9,999 pages of the unfiltered list."""
    row = await conn.fetchrow(BOUNDARY, (DEEP_PAGE - 1) * 50 - 1)
    tag = cursor_tag("tasks", "created_at", True, TaskFilter().to_service())
    return encode_cursor(tag, Keyset(row["created_at"], row["id"]))


async def measure(
    base: str, dsn: str, token: str, repeat: int, settings: Settings
) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    bare, offset = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        rows = await conn.fetch(BARE, ["COMPLETED"], ["llm"], "eu")
        bare.append((time.perf_counter() - t) * 1000)
    assert len(rows) == 51
    for _ in range(max(3, repeat // 5)):  # slow by design: fewer rounds
        t = time.perf_counter()
        await conn.fetch(BARE_OFFSET, (DEEP_PAGE - 1) * 50)
        offset.append((time.perf_counter() - t) * 1000)
    cursor = await deep_cursor(conn)
    scans = {}
    for name, sql in SCANS.items():
        scans[name] = _p50([await _timed(conn.fetch(sql)) for _ in range(max(3, repeat // 5))])
    await conn.close()
    api = []
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        for i in range(repeat + 3):
            t = time.perf_counter()
            response = await http.post(
                "/graphql", json={"query": QUERY, "variables": {"filter": FILTER}}
            )
            elapsed = (time.perf_counter() - t) * 1000
            assert len(response.json()["data"]["tasks"]["edges"]) == 50
            if i >= 3:  # warm-up: caches, pool
                api.append(elapsed)
        figures = {}
        for name, (method, path, query) in FIGURES.items():
            times = []
            for _ in range(repeat + 3):
                body = {"query": query} if query else None
                t = time.perf_counter()
                response = await http.request(method, path, json=body)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, name
                assert not isinstance(body, dict) or "errors" not in response.json(), name
            figures[name] = _p50(times[3:])
    server = await in_process(settings, repeat, QUERY, {"filter": FILTER})
    first = await in_process(settings, repeat, PAGE_QUERY, {"after": None})
    deep = await in_process(settings, repeat, PAGE_QUERY, {"after": cursor})
    b, s, a = statistics.median(bare), statistics.median(server), statistics.median(api)
    p1, pn = statistics.median(first), statistics.median(deep)
    return {
        "benchmark": "task_list",
        "bare_sql_ms_p50": round(b, 2),
        "graphql_server_ms_p50": round(s, 2),
        "http_round_trip_ms_p50": round(a, 2),
        "ratio": round(s / b, 2),
        "budget_ratio": 2.0,
        "page_1_server_ms_p50": round(p1, 2),
        "page_10000_server_ms_p50": round(pn, 2),
        "bare_offset_page_10000_ms_p50": round(statistics.median(offset), 2),
        "deep_page_ratio": round(pn / p1, 2),
        "budget_deep_page_ratio": 1.5,
        "figures_http_ms_p50": figures,
        "scans_replaced_ms_p50": scans,
        "figures_max_ms": max(ms for name, ms in figures.items() if name != BASELINE),
        "budget_figures_ms": 10,
    }


async def _timed(work: Any) -> float:
    t = time.perf_counter()
    await work
    return (time.perf_counter() - t) * 1000


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main(rows: int, repeat: int) -> dict[str, Any]:
    with fresh_stores() as (stores, folder):
        dsn = stores.database_url.replace("postgresql+asyncpg://", "postgresql://")

        async def fill() -> None:
            conn = await asyncpg.connect(dsn)
            # through the counter triggers: one statement, one upsert per counter key
            await conn.execute(FILL, rows)
            await conn.execute("ANALYZE tasks")
            await conn.close()

        started = time.perf_counter()
        asyncio.run(fill())
        filled = time.perf_counter() - started
        stack = serve(stores, folder)
        try:
            figures = asyncio.run(
                measure(stack.base, stack.dsn, stack.token("viewer"), repeat, stack.settings)
            )
        finally:
            stack.proc.stop()
    return {**figures, "rows": rows, "fill_seconds": round(filled, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    f = main(args.rows, args.repeat)
    print(f"{'measure':<32}{'value':>10}")
    for key in (
        "rows",
        "bare_sql_ms_p50",
        "graphql_server_ms_p50",
        "http_round_trip_ms_p50",
        "ratio",
        "page_1_server_ms_p50",
        "page_10000_server_ms_p50",
        "bare_offset_page_10000_ms_p50",
        "deep_page_ratio",
    ):
        print(f"{key:<32}{f[key]:>10}")
    print(f"{'figure (HTTP, p50 ms)':<32}{'value':>10}")
    for name, ms in {**f["figures_http_ms_p50"], **f["scans_replaced_ms_p50"]}.items():
        print(f"{name:<32}{ms:>10}")
    print("budgets: GraphQL within 2x of the bare SQL query; page 10,000 within 1.5x of page 1;")
    print("aggregate figures <= 10 ms each")
    print(json.dumps(f))
