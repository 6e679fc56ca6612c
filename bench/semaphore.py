"""Semaphore throughput: acquire/release pairs per second through the Redis priority semaphore
with 1, 8 and 64 concurrent contenders, next to a bare Redis INCR/DECR pair on the same server
in the same run. "free": as many slots as contenders (the cost of the scripts); "contended":
the default 4 slots (1 reserved), half the contenders high priority, waiting by polling.

    python -m bench.semaphore [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from app.platform.embedded import start_redis
from app.services.llm import semaphore
from app.services.llm.semaphore import SemaphoreConfig

CONTENDERS = (1, 8, 64)


async def bare_pairs(redis: Redis, contenders: int, seconds: float) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def run() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await redis.incr("bench:counter")
            await redis.decr("bench:counter")
            count += 1

    await asyncio.gather(*(run() for _ in range(contenders)))
    return count / seconds


async def semaphore_pairs(
    redis: Redis, config: SemaphoreConfig, contenders: int, seconds: float
) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def run(i: int) -> None:
        nonlocal count
        priority = 90 if i % 2 else 10
        while time.perf_counter() < deadline:
            async with semaphore.slot(redis, config, priority=priority):
                pass
            count += 1

    await asyncio.gather(*(run(i) for i in range(contenders)))
    return count / seconds


async def measure(redis_url: str, seconds: float) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    rows: dict[str, Any] = {}
    try:
        for n in CONTENDERS:
            await redis.delete(*[k async for k in redis.scan_iter("opsgraph:sem:*")] or ["x"])
            bare = await bare_pairs(redis, n, seconds)
            free = await semaphore_pairs(
                redis, SemaphoreConfig(max_concurrent=n + 1, reserved_high_priority=1), n, seconds
            )
            contended = await semaphore_pairs(redis, SemaphoreConfig(), n, seconds)
            rows[str(n)] = {
                "bare_incr_decr_pairs_per_s": round(bare, 1),
                "semaphore_free_pairs_per_s": round(free, 1),
                "semaphore_contended_pairs_per_s": round(contended, 1),
                "ratio_free": round(free / bare, 3),
                "ratio_contended": round(contended / bare, 3),
            }
    finally:
        await redis.aclose()
    return rows


def main(seconds: float) -> dict[str, Any]:
    url = os.environ.get("OPSGRAPH_TEST_REDIS_URL", "")
    embedded = None
    if not url:
        embedded = start_redis(Path(tempfile.mkdtemp()), persist=False)
        url = embedded.url
    try:
        rows = asyncio.run(measure(url, seconds))
    finally:
        if embedded:
            embedded.stop()
    return {"benchmark": "semaphore", "seconds_per_cell": seconds, "contenders": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    figures = main(args.seconds)
    print(
        f"{'contenders':>10} {'INCR/DECR /s':>14} {'free /s':>10} {'contended /s':>13} "
        f"{'free ratio':>11} {'cont. ratio':>12}"
    )
    for n, row in figures["contenders"].items():
        print(
            f"{n:>10} {row['bare_incr_decr_pairs_per_s']:>14} "
            f"{row['semaphore_free_pairs_per_s']:>10} {row['semaphore_contended_pairs_per_s']:>13} "
            f"{row['ratio_free']:>11} {row['ratio_contended']:>12}"
        )
    print(json.dumps(figures))
