"""A typed view of the arq ctx: the clients and counters a worker process shares."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.edge.uow import unit_of_work
from app.services.fleet.heartbeats import WorkerBeat
from app.services.tasks.backoff import BackoffPolicy
from workers.llm_slots import BatchedCalls
from workers.models import PipelineModels
from workers.providers import Provider
from workers.writes import AttemptWrites


class Cancellable(Protocol):
    """A running handler that can be told a cancel was requested (workers/authored.py)."""

    def cancel_requested(self) -> None: ...


class UsageSinceReport:
    """Latencies and tokens of the tasks completed since the last agent report; bounded (the
    latest latencies, the first models) so a report that keeps failing holds no backlog."""

    MAX_LATENCIES = 1000
    MAX_MODELS = 50

    def __init__(self) -> None:
        self.latencies_ms: deque[float] = deque(maxlen=self.MAX_LATENCIES)
        self.tokens: dict[str, dict[str, int]] = {}

    def add(
        self, latency_ms: float | None, model: str | None, tokens_in: int, tokens_out: int
    ) -> None:
        if latency_ms is not None:
            self.latencies_ms.append(round(latency_ms, 2))
        if model and (tokens_in or tokens_out):
            if model not in self.tokens and len(self.tokens) >= self.MAX_MODELS:
                model = "other"
            t = self.tokens.setdefault(model, {"input": 0, "output": 0})
            t["input"] += tokens_in
            t["output"] += tokens_out

    def restore(self, latencies: list[float], tokens: dict[str, dict[str, int]]) -> None:
        """Put back what a failed report took (older latencies first, within the bound)."""
        room = self.MAX_LATENCIES - len(self.latencies_ms)
        if room > 0:
            self.latencies_ms.extendleft(reversed(latencies[-room:]))
        for model, t in tokens.items():
            self.add(None, model, t["input"], t["output"])

    def take(self) -> tuple[list[float], dict[str, dict[str, int]]]:
        taken = list(self.latencies_ms), self.tokens
        self.latencies_ms.clear()
        self.tokens = {}
        return taken


@dataclass
class WorkerState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # plain asyncpg connections for the attempt hot path (app/services/tasks/attempt_writes.py)
    raw: asyncpg.Pool
    redis: ArqRedis
    # the same connections, for the consumers: their jobs' transactions merged
    consumer_redis: ArqRedis
    provider: Provider
    http: httpx.AsyncClient
    beat: WorkerBeat
    policy: BackoffPolicy
    models: PipelineModels
    # plain tasks' starts and completions, group-committed
    writes: AttemptWrites
    # the LLM semaphore's acquires and releases, batched
    llm_slots: BatchedCalls
    # ids of tasks this process is running right now
    running: set[str] = field(default_factory=set)
    # ids of tasks whose job this process holds while it waits for an LLM slot
    waiting: set[str] = field(default_factory=set)
    # the authored handlers running now, by task id: told first when their task is cancelled
    contexts: dict[str, Cancellable] = field(default_factory=dict)
    # tasks this process handed back for want of a handler (logged once each; bounded)
    handed_back: set[str] = field(default_factory=set)
    # what completed tasks cost since the last agent report (see workers/agent_report.py)
    usage: UsageSinceReport = field(default_factory=lambda: UsageSinceReport())

    @property
    def name(self) -> str:
        return self.beat.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A unit of work whose events follow those the attempt writes have yet to publish
        (see workers/writes.py): a task's progress or retry never overtakes its RUNNING."""
        await self.writes.published.barrier()
        async with unit_of_work(self.sessionmaker, self.redis) as session:
            yield session


def state_of(ctx: dict[str, Any]) -> WorkerState:
    state = ctx["opsgraph"]
    assert isinstance(state, WorkerState)
    return state
