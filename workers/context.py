"""A typed view of the arq ctx: the clients and counters a worker process shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.services.backoff import BackoffPolicy
from app.services.heartbeats import WorkerBeat
from workers.pipeline.models import PipelineModels
from workers.providers import Provider


@dataclass
class WorkerState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    provider: Provider
    http: httpx.AsyncClient
    beat: WorkerBeat
    policy: BackoffPolicy
    models: PipelineModels
    # ids of tasks this process is running right now
    running: set[str] = field(default_factory=set)
    # ids of tasks whose job this process holds while it waits for an LLM slot
    waiting: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.beat.name


def state_of(ctx: dict[str, Any]) -> WorkerState:
    state = ctx["opsgraph"]
    assert isinstance(state, WorkerState)
    return state
