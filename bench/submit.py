"""Task submission over HTTP, one API process: tasks accepted per second one per request
(`submitTask`) versus in batches of 100 (`POST /api/v1/tasks/batch`), next to a GraphQL
hello-world (`{ __typename }`) with the same clients in the same run. No worker runs: this
measures accepting (validate, write QUEUED with its transition, enqueue), not executing.

    python -m bench.submit [--clients 8] [--seconds 8] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.harness import fresh_stores, serve

SUBMIT = """mutation($input: SubmitTaskInput!) { submitTask(input: $input) { task { id } } }"""
ONE = {"taskType": "echo", "queue": "bench", "config": {"value": 1}}


async def rate(
    base: str,
    token: str,
    clients: int,
    seconds: float,
    call: Callable[[httpx.AsyncClient], Awaitable[int]],
) -> float:
    """Units (tasks or queries) per second that `clients` loops complete in `seconds`."""
    done = 0
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        await call(http)  # warm-up
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                # awaited first: `done += await ...` reads `done` before the await and
                # loses every increment another loop made meanwhile
                units = await call(http)
                done += units

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        return done / (time.perf_counter() - started)


async def measure(
    base: str, token: str, clients: int, seconds: float, batch: int
) -> dict[str, Any]:
    async def hello(http: httpx.AsyncClient) -> int:
        r = await http.post("/graphql", json={"query": "{ __typename }"})
        assert r.status_code == 200
        return 1

    async def single(http: httpx.AsyncClient) -> int:
        r = await http.post("/graphql", json={"query": SUBMIT, "variables": {"input": ONE}})
        assert r.json()["data"]["submitTask"]["task"], r.text
        return 1

    body = {"tasks": [{"task_type": "echo", "queue": "bench"} for _ in range(batch)]}

    async def batched(http: httpx.AsyncClient) -> int:
        r = await http.post("/api/v1/tasks/batch", json=body)
        assert r.status_code == 202, r.text
        return int(r.json()["submitted"])

    hello_rate = await rate(base, token, clients, seconds, hello)
    single_rate = await rate(base, token, clients, seconds, single)
    batch_rate = await rate(base, token, clients, seconds, batched)
    return {
        "benchmark": "submit",
        "hello_queries_per_s": round(hello_rate, 1),
        "tasks_per_s_one_per_request": round(single_rate, 1),
        f"tasks_per_s_batches_of_{batch}": round(batch_rate, 1),
        "single_vs_hello_ratio": round(single_rate / hello_rate, 3),
        "batch_vs_single_ratio": round(batch_rate / single_rate, 2),
    }


def main(clients: int, seconds: float, batch: int) -> dict[str, Any]:
    with fresh_stores() as (stores, folder):
        stack = serve(stores, folder)
        try:
            return asyncio.run(
                measure(stack.base, stack.token("platform_admin"), clients, seconds, batch)
            )
        finally:
            stack.proc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    f = main(args.clients, args.seconds, args.batch)
    print(f"{'measure':<36}{'value':>12}")
    for key, value in f.items():
        if key != "benchmark":
            print(f"{key:<36}{value:>12}")
    print(json.dumps(f))
