"""Subscription fan-out: N concurrent websocket subscribers (graphql-transport-ws) on one API
process all receive each task change; latency is measured from the change's commit (the task's
`updatedAt`, written just before commit) to arrival at each subscriber. Also the API process's
RSS with all subscribers connected. Baseline in the same run: one bare Redis PUBLISH to one
SUBSCRIBE on the same server (the floor of any fan-out through Redis).

    python -m bench.subscriptions [--subscribers 1000] [--events 20] [--client-processes 2]

The subscribers run in `--client-processes` processes of their own (the API process is timed,
not the client's parsing of N messages per event); they share the machine's cores with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from datetime import datetime
from typing import Any

import httpx
import psutil
import redis.asyncio as aioredis
import websockets

from bench.harness import fresh_stores, serve

SUBSCRIPTION = 'subscription { taskUpdated(queue: "bench-sub") { id status updatedAt } }'
SUBMIT = 'mutation { submitTask(input: {taskType: "echo", queue: "bench-sub"}) { task { id } } }'


async def subscriber(
    url: str,
    token: str,
    ready: asyncio.Event,
    counter: list[int],
    latencies: list[float],
    expected: int,
) -> None:
    async with websockets.connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_size=2**20,
        open_timeout=60,
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        await ws.recv()
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        )
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        got = 0
        while got < expected:
            message = json.loads(await ws.recv())
            if message.get("type") != "next":
                continue
            now = time.time()
            changed = datetime.fromisoformat(
                message["payload"]["data"]["taskUpdated"]["updatedAt"]
            ).timestamp()
            latencies.append((now - changed) * 1000)
            got += 1


async def bare_redis(redis_url: str, n: int) -> list[float]:
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe("bench:bare")
    await pubsub.get_message(timeout=1)
    out = []
    for _ in range(n):
        sent = time.perf_counter()
        await client.publish("bench:bare", "x")
        while (await pubsub.get_message(timeout=1)) is None:
            pass
        out.append((time.perf_counter() - sent) * 1000)
    await pubsub.aclose()
    await client.aclose()
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def _clients(url: str, token: str, n: int, events: int, out: Any) -> None:
    """One client process: `n` subscribers; says when all are subscribed, then their figures."""
    ready = asyncio.Event()
    counter = [0, n]
    latencies: list[float] = []
    subs = [
        asyncio.create_task(subscriber(url, token, ready, counter, latencies, events))
        for _ in range(n)
    ]
    await asyncio.wait_for(ready.wait(), 300)
    out.put(("ready", n))
    await asyncio.wait_for(asyncio.gather(*subs), 180)
    out.put(("latencies", latencies))


def _client_process(url: str, token: str, n: int, events: int, out: Any) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * n + 256)), hard))
    asyncio.run(_clients(url, token, n, events, out))


async def run(
    base: str, redis_url: str, token: str, pid: int, n: int, events: int, clients: int
) -> dict[str, Any]:
    url = base.replace("http", "ws", 1) + "/graphql"
    process = psutil.Process(pid)
    rss_idle = process.memory_info().rss / 2**20
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    shares = [n // clients + (i < n % clients) for i in range(clients)]
    procs = [ctx.Process(target=_client_process, args=(url, token, k, events, out)) for k in shares]
    for p in procs:
        p.start()
    for _ in procs:  # every subscriber subscribed
        kind, _count = await asyncio.to_thread(out.get, True, 300)
        assert kind == "ready"
    await asyncio.sleep(1.0)  # let the last subscriptions register on the server
    rss_connected = process.memory_info().rss / 2**20
    # Each task change is one event: QUEUED only (no worker serves the queue).
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for _ in range(events):
            response = await http.post("/graphql", json={"query": SUBMIT})
            assert response.status_code == 200, response.text
            await asyncio.sleep(0.25)
    latencies: list[float] = []
    for _ in procs:
        kind, values = await asyncio.to_thread(out.get, True, 300)
        assert kind == "latencies"
        latencies.extend(values)
    for p in procs:
        await asyncio.to_thread(p.join, 30)
    rss_after = process.memory_info().rss / 2**20
    bare = await bare_redis(redis_url, 200)
    budget = (60, 200) if n <= 1000 else (250, 400)
    return {
        "benchmark": "subscriptions",
        "subscribers": n,
        "client_processes": clients,
        "events": events,
        "deliveries": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
        "bare_redis_pubsub_p50_ms": round(statistics.median(bare), 3),
        "bare_redis_pubsub_p99_ms": round(percentile(bare, 0.99), 3),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_connected_mb": round(rss_connected, 1),
        "rss_after_mb": round(rss_after, 1),
        "budget_p99_ms": budget[0],
        "budget_rss_mb": budget[1],
    }


def main(n: int, events: int, clients: int = 2) -> dict[str, Any]:
    with fresh_stores() as (stores, folder):
        stack = serve(stores, folder)
        try:
            return asyncio.run(
                run(
                    stack.base,
                    stores.redis_url,
                    stack.token("platform_admin"),
                    stack.proc.process.pid,
                    n,
                    events,
                    clients,
                )
            )
        finally:
            stack.proc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--client-processes", type=int, default=2)
    args = parser.parse_args()
    f = main(args.subscribers, args.events, args.client_processes)
    print(f"{'measure':<36}{'value':>12}")
    for key in (
        "subscribers",
        "client_processes",
        "events",
        "deliveries",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "bare_redis_pubsub_p50_ms",
        "bare_redis_pubsub_p99_ms",
        "rss_idle_mb",
        "rss_connected_mb",
        "rss_after_mb",
    ):
        print(f"{key:<36}{f[key]:>12}")
    print(f"budget: p99 <= {f['budget_p99_ms']} ms, RSS <= {f['budget_rss_mb']} MB")
    print(json.dumps(f))
