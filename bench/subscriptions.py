"""Subscription fan-out: N concurrent websocket subscribers (graphql-transport-ws) on one API
process all receive each task change; latency is measured from the change's commit (the task's
`updatedAt`, written just before commit) to arrival at each subscriber. Also the API process's
RSS with all subscribers connected. Baseline in the same run: one bare Redis PUBLISH to one
SUBSCRIBE on the same server (the floor of any fan-out through Redis).

    python -m bench.subscriptions [--subscribers 1000] [--events 20] [--client-processes 2]

The subscribers run in `--client-processes` processes of their own (the API process is timed,
not the client's parsing of N messages per event); they share the machine's cores with it, so
each is a lean RFC 6455 client on uvloop that reads only the timestamp it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import redis.asyncio as aioredis

from app.cli.run import run_loop
from bench.harness import fresh_stores, serve

SUBSCRIPTION = 'subscription { taskUpdated(queue: "bench-sub") { id status updatedAt } }'
SUBMIT = 'mutation { submitTask(input: {taskType: "echo", queue: "bench-sub"}) { task { id } } }'


class Subscriber(asyncio.Protocol):
    """One websocket subscriber, written against the wire: a real RFC 6455 client (masked
    frames, ping answered) that parses only what the measure needs, so the 2 cores spend
    their time in the server under test rather than in N client-side websocket stacks.
    Arrival is when a frame's last byte is read."""

    def __init__(self, token: str, expected: int, latencies: list[float]) -> None:
        self.token = token
        self.expected = expected
        self.latencies = latencies
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.subscribed = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(_client_frame(0x1, text.encode()))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[:end]).split(b"\r\n", 1)[0]
            assert b" 101 " in status, status
            del self.buffer[: end + 4]
            self.upgraded = True
            auth = {"Authorization": f"Bearer {self.token}"}
            self.send_text(json.dumps({"type": "connection_init", "payload": auth}))
        while True:
            frame = _server_frame(self.buffer)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x9:  # ping
                assert self.transport is not None
                self.transport.write(_client_frame(0xA, payload))
            elif opcode == 0x1:
                self.on_text(payload, time.time())
            elif opcode == 0x8 and not self.done.done():
                self.done.set_exception(RuntimeError(f"closed by the server: {payload!r}"))

    def on_text(self, payload: bytes, now: float) -> None:
        if b'"type":"next"' in payload:
            at = payload.index(b'"updatedAt":"') + 13
            changed = datetime.fromisoformat(payload[at : payload.index(b'"', at)].decode())
            self.latencies.append((now - changed.timestamp()) * 1000)
            self.got += 1
            if self.got == self.expected and not self.done.done():
                self.done.set_result(None)
        elif b'"connection_ack"' in payload:
            subscribe = {"query": SUBSCRIPTION}
            self.send_text(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
            self.subscribed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"connection lost: {exc}"))


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def _server_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """Take one whole (unmasked, unfragmented) server frame off the buffer, if there is one."""
    if len(buffer) < 2:
        return None
    n, offset = buffer[1] & 0x7F, 2
    if n == 126:
        if len(buffer) < 4:
            return None
        n, offset = int.from_bytes(buffer[2:4], "big"), 4
    elif n == 127:
        if len(buffer) < 10:
            return None
        n, offset = int.from_bytes(buffer[2:10], "big"), 10
    if len(buffer) < offset + n:
        return None
    opcode, payload = buffer[0] & 0x0F, bytes(buffer[offset : offset + n])
    del buffer[: offset + n]
    return opcode, payload


async def subscriber(url: str, token: str, expected: int, latencies: list[float]) -> Subscriber:
    """Connect, upgrade and subscribe; the returned protocol's `done` resolves after
    `expected` results."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, sub = await loop.create_connection(
        lambda: Subscriber(token, expected, latencies), parts.hostname, parts.port
    )
    assert sub.transport is not None
    key = base64.b64encode(os.urandom(16)).decode()
    sub.transport.write(
        (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(sub.subscribed, 120)
    return sub


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
    latencies: list[float] = []
    subs: list[Subscriber] = []
    for start in range(0, n, 100):  # in waves: the server's accept queue is finite
        wave = [
            subscriber(url, token, events, latencies) for _ in range(start, min(n, start + 100))
        ]
        subs += await asyncio.gather(*wave)
    out.put(("ready", n))
    await asyncio.wait_for(asyncio.gather(*(s.done for s in subs)), 180)
    for s in subs:
        assert s.transport is not None
        s.transport.close()
    out.put(("latencies", latencies))


def _client_process(url: str, token: str, n: int, events: int, out: Any) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * n + 256)), hard))
    run_loop(_clients(url, token, n, events, out))


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
