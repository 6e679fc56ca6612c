"""A worker process's way to the LLM semaphore: the acquires (and the releases) its jobs ask
for at about the same time go to Redis as one script call, each answered on its own.

Jobs a consumer claims together start together, and ask for their slots together; one call
for all of them instead of one each takes round trips (and Redis scripts) off every task.
The script admits them in order, exactly as separate calls at that instant would."""

from __future__ import annotations

from redis.asyncio import Redis

from app.platform.group_commit import GroupCommit
from app.services.llm import semaphore
from app.services.llm.semaphore import SemaphoreConfig


class BatchedCalls:
    """`semaphore.Calls` for one process, batched (see app/platform/group_commit.py: a batch
    that fails is sent again one request at a time, so one waiter's error stays its own)."""

    def __init__(self, redis: Redis, config: SemaphoreConfig, *, batch: int) -> None:
        self._redis = redis
        self._config = config
        self._acquires: GroupCommit[tuple[str, str], float | None] = GroupCommit(
            self._acquire_many, max_batch=batch
        )
        self._releases: GroupCommit[str, None] = GroupCommit(self._release_many, max_batch=batch)

    async def try_acquire(self, waiter: str, priority_class: str) -> float | None:
        return await self._acquires((waiter, priority_class))

    async def release(self, lease: str) -> None:
        await self._releases(lease)

    async def _acquire_many(self, waiters: list[tuple[str, str]]) -> list[float | None]:
        return await semaphore.try_acquire_many(self._redis, self._config, waiters)

    async def _release_many(self, leases: list[str]) -> list[None]:
        await semaphore.release_many(self._redis, self._config, leases)
        return [None] * len(leases)
