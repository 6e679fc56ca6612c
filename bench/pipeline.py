"""Images per second from a watched folder to stored security events, with simulated
zero-latency models, next to the spine's end-to-end task throughput (simulated LLM task,
0 ms) measured on the same worker process in the same run. An image is at least three tasks
(detection, enrichment, its share of an analysis), so the budget is a ratio of 0.25.

    python -m bench.pipeline [--images 300] [--cameras 4] [--tasks 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from app.config import Settings
from app.edge.state import open_state
from app.edge.uow import unit_of_work
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from tests.processes import start_worker
from tests.stores import open_stores
from tests.test_pipeline import jpeg

QUEUES = "llm,detection_queue,enrichment_queue,analysis_queue"


async def wait_for(dsn: str, query: str, target: int, timeout: float = 600) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while (await conn.fetchval(query) or 0) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(query)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def spine(settings: Settings, dsn: str, n: int) -> float:
    spec = task_specs.TaskSpec(
        operation="chat_completion",
        queue="llm",
        input={"prompt": "ping"},
        config={"simulate": {"latency_ms": 0}},
    )
    async with open_state(settings, listen=False) as state:
        started = time.perf_counter()

        async def submit(count: int) -> None:
            for _ in range(count):
                async with unit_of_work(state.sessionmaker, state.redis) as session:
                    await task_submissions.submit_task(session=session, spec=spec)

        await asyncio.gather(*(submit(n // 10 + (i < n % 10)) for i in range(10)))
        await wait_for(dsn, "SELECT count(*) FROM tasks WHERE status = 'COMPLETED'", n)
        return time.perf_counter() - started


async def pipeline(root: Path, dsn: str, images: int, cameras: int) -> float:
    pictures = [jpeg(i, size=(320, 240)) for i in range(images)]
    started = time.perf_counter()
    for i, data in enumerate(pictures):
        folder = root / f"cam{i % cameras}"
        folder.mkdir(exist_ok=True)
        (folder / f"img_{i:05}.jpg").write_bytes(data)
    await wait_for(dsn, "SELECT sum(detection_count) FROM security_events", images)
    return time.perf_counter() - started


def main(images: int, cameras: int, n_tasks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stores = open_stores(folder)
        root = folder / "cameras"
        root.mkdir()
        env = {
            "OPSGRAPH_DATABASE_URL": stores.database_url,
            "OPSGRAPH_REDIS_URL": stores.redis_url,
            "OPSGRAPH_JWT_SECRET": "bench-secret-bench-secret-bench-secret-0",
            "OPSGRAPH_WEBHOOK_SECRET": "bench-webhook-secret",
            "OPSGRAPH_CAMERA_ROOT": str(root),
            "OPSGRAPH_WATCH": "1",
            "OPSGRAPH_CAMERA_SETTLE_SECONDS": "0",
            "OPSGRAPH_BATCH_IDLE_SECONDS": "0.3",
            "OPSGRAPH_BATCH_WINDOW_SECONDS": "3",
            "OPSGRAPH_BATCH_MAX_SIZE": "20",
            "OPSGRAPH_BATCH_CHECK_SECONDS": "0.1",
            "OPSGRAPH_SIMULATED_LATENCY_MS": "0",
            "OPSGRAPH_LLM_MAX_CONCURRENT": "10",
        }
        dsn = stores.database_url.replace("postgresql+asyncpg://", "postgresql://")
        worker = start_worker(env, folder, name="bench-pipeline", queues=QUEUES, concurrency=10)
        try:
            settings = Settings(database_url=stores.database_url, redis_url=stores.redis_url)
            spine_s = asyncio.run(spine(settings, dsn, n_tasks))
            pipe_s = asyncio.run(pipeline(root, dsn, images, cameras))
        finally:
            worker.stop()
            stores.close()
    tps, ips = n_tasks / spine_s, images / pipe_s
    return {
        "benchmark": "pipeline",
        "images": images,
        "cameras": cameras,
        "spine_tasks_per_s": round(tps, 1),
        "images_per_s": round(ips, 1),
        "ratio": round(ips / tps, 3),
        "budget_ratio": 0.25,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=600)
    args = parser.parse_args()
    f = main(args.images, args.cameras, args.tasks)
    print(f"{'measure':<24}{'value':>10}")
    for key in ("images", "cameras", "spine_tasks_per_s", "images_per_s", "ratio"):
        print(f"{key:<24}{f[key]:>10}")
    print("budget: images/s at least 0.25 of the spine's tasks/s")
    print(json.dumps(f))
