"""Worker heartbeats in Redis: what each live worker consumes, runs and has done."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from app.platform import events

WORKER_KEY = "opsgraph:worker:"
WORKERS_SET = "opsgraph:workers"


@dataclass
class WorkerBeat:
    name: str
    queues: list[str]
    concurrency: int
    active: int = 0
    completed: int = 0
    failed: int = 0
    memory_mb: float | None = None
    started_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    pid: int = 0
    host: str = ""
    running: list[str] = field(default_factory=list)  # ids of the tasks it runs right now
    waiting: list[str] = field(default_factory=list)  # ids of tasks waiting for an LLM slot
    # the task types it has handlers for: name -> the hash of its definition (the registry's)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def utilization_pct(self) -> float:
        return round(self.active / self.concurrency * 100, 2) if self.concurrency else 0.0

    @property
    def has_capacity(self) -> bool:
        return self.active < self.concurrency

    @property
    def tasks_per_minute(self) -> float:
        minutes = max((self.last_seen - self.started_at) / 60.0, 1 / 60)
        return round(self.completed / minutes, 2)


# each beat and each clean exit is an event (for GraphQL's workersChanged); a worker that dies
# silently is noticed when its key expires
WORKER_KIND = "worker"


async def beat(redis: Redis, info: WorkerBeat, *, ttl_seconds: float) -> None:
    info.last_seen = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(WORKER_KEY + info.name, json.dumps(asdict(info)), px=int(ttl_seconds * 1000))
        pipe.zadd(WORKERS_SET, {info.name: info.last_seen})
        events.publish(pipe, WORKER_KIND, info.name, {"name": info.name, "status": "online"})
        await pipe.execute()


async def forget(redis: Redis, name: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(WORKER_KEY + name)
        pipe.zrem(WORKERS_SET, name)
        events.publish(pipe, WORKER_KIND, name, {"name": name, "status": "offline"})
        await pipe.execute()


async def live_workers(redis: Redis) -> list[WorkerBeat]:
    names = [
        n.decode() if isinstance(n, bytes) else n for n in await redis.zrange(WORKERS_SET, 0, -1)
    ]
    if not names:
        return []
    raws = await redis.mget([WORKER_KEY + n for n in names])
    live: list[WorkerBeat] = []
    dead: list[str] = []
    for name, raw in zip(names, raws, strict=True):
        if raw is None:
            dead.append(name)
            continue
        live.append(WorkerBeat(**json.loads(raw)))
    if dead:
        await redis.zrem(WORKERS_SET, *dead)
    return sorted(live, key=lambda w: w.name)
