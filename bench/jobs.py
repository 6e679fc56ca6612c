"""`GET /api/jobs/search` with its facets over 1,000,000 jobs, through the API (HTTP), next to
the bare SQL it needs (the page, the count and the two facet queries, run with asyncpg on the
same database in the same run).

    python -m bench.jobs [--rows 1000000] [--repeat 20]
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

from bench.harness import fresh_stores, serve

FILL = """
INSERT INTO tasks (id, task_type, operation, status, queue, priority, origin_instance,
  input, config, metadata, errors, attempts, max_attempts, retry_count, dead_lettered,
  is_resumed, resume_attempt_count, progress, progress_history, input_tokens, output_tokens,
  cost_usd, created_at, updated_at, started_at, completed_at, media, service_requests)
SELECT gen_random_uuid(), (ARRAY['export','cleanup'])[1 + i % 2],
  (ARRAY['security_events','retention'])[1 + i % 2],
  (ARRAY['QUEUED','RUNNING','COMPLETED','FAILED','CANCELLED'])[1 + (i / 7) % 5],
  (ARRAY['default','bulk'])[1 + i % 3 / 2], 50, 'jobs', '{}', '{}',
  jsonb_build_object('format', (ARRAY['csv','json'])[1 + i % 2], 'note', 'n' || i),
  CASE WHEN i % 13 = 0 THEN '["disk full"]'::jsonb ELSE '[]'::jsonb END,
  1, 1, 0, false, false, 0, 100, '[]', 0, 0, 0,
  now() - (i || ' seconds')::interval, now(), now() - (i || ' seconds')::interval,
  now() - (i || ' seconds')::interval + ((i % 90) || ' seconds')::interval, '{}', '[]'
FROM generate_series(1, $1) AS i
"""

PARAMS = {"status": "running,pending", "sort": "created_at", "order": "desc", "limit": 50}
WHERE = "task_type IN ('export', 'cleanup')"
BARE = [
    f"SELECT * FROM tasks WHERE {WHERE} AND status IN ('RUNNING', 'QUEUED')"
    " ORDER BY created_at DESC, id DESC LIMIT 51",
    f"SELECT count(*) FROM tasks WHERE {WHERE} AND status IN ('RUNNING', 'QUEUED')",
    f"SELECT status, count(*) FROM tasks WHERE {WHERE} GROUP BY status",
    f"SELECT task_type, count(*) FROM tasks WHERE {WHERE} AND status IN ('RUNNING', 'QUEUED')"
    " GROUP BY task_type",
]


async def measure(base: str, dsn: str, token: str, repeat: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    bare = []
    for i in range(repeat + 2):
        t = time.perf_counter()
        for q in BARE:
            await conn.fetch(q)
        if i >= 2:
            bare.append((time.perf_counter() - t) * 1000)
    await conn.close()
    api = []
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as http:
        for i in range(repeat + 2):
            t = time.perf_counter()
            r = await http.get("/api/jobs/search", params=PARAMS)
            if i >= 2:
                api.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and len(r.json()["jobs"]) == 50, r.text
    b, a = statistics.median(bare), statistics.median(api)
    return {
        "benchmark": "jobs_search",
        "bare_sql_ms_p50": round(b, 2),
        "api_ms_p50": round(a, 2),
        "ratio": round(a / b, 2),
        "facets": r.json()["aggregations"],
        "count": r.json()["count"],
    }


def main(rows: int, repeat: int) -> dict[str, Any]:
    with fresh_stores() as (stores, folder):
        dsn = stores.database_url.replace("postgresql+asyncpg://", "postgresql://")

        async def fill() -> None:
            conn = await asyncpg.connect(dsn)
            # as bench/task_list.py: the per-row counter trigger is quadratic in one statement
            await conn.execute("ALTER TABLE tasks DISABLE TRIGGER USER")
            await conn.execute(FILL, rows)
            await conn.execute("ALTER TABLE tasks ENABLE TRIGGER USER")
            await conn.execute("ANALYZE tasks")
            await conn.close()

        started = time.perf_counter()
        asyncio.run(fill())
        filled = time.perf_counter() - started
        stack = serve(stores, folder)
        try:
            figures = asyncio.run(measure(stack.base, stack.dsn, stack.token("viewer"), repeat))
        finally:
            stack.proc.stop()
    return {**figures, "rows": rows, "fill_seconds": round(filled, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    f = main(args.rows, args.repeat)
    print(f"{'measure':<24}{'value':>12}")
    for key in ("rows", "count", "bare_sql_ms_p50", "api_ms_p50", "ratio"):
        print(f"{key:<24}{f[key]:>12}")
    print(json.dumps(f))
