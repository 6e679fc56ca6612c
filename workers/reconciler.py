"""The reconciler: puts back QUEUED tasks whose job vanished from Redis and recovers RUNNING
tasks whose worker stopped heartbeating, prunes rollups older than any window and folds the
connections' counter rows into one. One pass at a time across all workers (a Redis
lock)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app.db.base import utcnow
from app.db.models import Task
from app.edge.uow import read_only, unit_of_work
from app.kernel import effects
from app.platform import dispatch
from app.services.fleet.heartbeats import WorkerBeat, live_workers
from app.services.tasks import commands as tasks
from app.services.tasks import counters
from app.services.tasks.lifecycle import TaskStatus
from workers.context import WorkerState

log = logging.getLogger(__name__)
LOCK_KEY = "opsgraph:reconciler:lock"
# Shared by every worker process, so the "silent twice" rule holds whoever runs the pass.
SUSPECT_WORKERS = "opsgraph:reconciler:suspect_workers"
SUSPECT_JOBS = "opsgraph:reconciler:suspect_jobs"
PAGE = 1000
MAX_PAGES_PER_PASS = 100  # up to 100,000 queued tasks checked per pass

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass
class Reconciler:
    state: WorkerState

    async def run_forever(self) -> None:
        interval = self.state.settings.reconcile_interval_seconds
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, SQLAlchemyError) as exc:
                log.warning("reconciler pass failed: %s", exc)
            await asyncio.sleep(interval)

    async def run_once(self, *, force: bool = False) -> dict[str, int]:
        settings = self.state.settings
        redis = self.state.redis
        lock_ms = int(max(settings.reconcile_interval_seconds * 0.9, 0.5) * 1000)
        if not force and not await redis.set(LOCK_KEY, self.state.name, nx=True, px=lock_ms):
            return {"skipped": 1}
        # The lock outlives the pass however long it takes (extended while it runs), and
        # then still spaces passes by about one interval (it is left to expire).
        keeper = asyncio.create_task(self._hold_lock(lock_ms))
        try:
            beats = {b.name: b for b in await live_workers(redis)}
            resumed = await self._recover_running(beats)
            requeued = await self._requeue_lost(beats)
            # two short transactions: each takes its tables' locks in one order
            async with unit_of_work(self.state.sessionmaker, redis) as session:
                pruned = await counters.prune_rollups(session=session, now=utcnow())
            async with unit_of_work(self.state.sessionmaker, redis) as session:
                await counters.compact_counters(session=session)
        finally:
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper
        return {"resumed": resumed, "requeued": requeued, "rollups_pruned": pruned}

    async def _hold_lock(self, lock_ms: int) -> None:
        extend = self.state.redis.register_script(_EXTEND)
        while True:
            await asyncio.sleep(lock_ms / 3000)
            with suppress(RedisError, OSError):
                await extend(keys=[LOCK_KEY], args=[self.state.name, lock_ms])

    async def _recover_running(self, beats: dict[str, WorkerBeat]) -> int:
        state = self.state
        async with read_only(state.sessionmaker) as session:
            running = await tasks.running_tasks(session=session)
        by_worker: dict[str, list[Task]] = {}
        for t in running:
            by_worker.setdefault(t.worker_name or "", []).append(t)
        silent = {w for w in by_worker if w != state.name and w not in beats}
        suspects = {_s(w) for w in await state.redis.smembers(SUSPECT_WORKERS)}  # type: ignore[misc]
        dead = silent & suspects
        await _replace_set(state.redis, SUSPECT_WORKERS, silent - dead)
        count = 0
        for worker in dead:
            for task in by_worker[worker]:
                count += await self._resume(str(task.id), worker, "stopped heartbeating")
        # A live worker that no longer runs a task it holds (its final write failed): the
        # heartbeat lists what it runs; a task missing from a beat taken well after the
        # task's last change is an orphan.
        margin = 2 * state.settings.heartbeat_interval_seconds
        for worker, held in by_worker.items():
            beat = beats.get(worker)
            if beat is None:
                continue
            listed = set(beat.running)
            for task in held:
                age = beat.last_seen - task.updated_at.timestamp()
                if str(task.id) not in listed and age > margin:
                    count += await self._resume(str(task.id), worker, "no longer runs it")
        # A cancel request whose abort was lost (Redis failed after commit) is sent again.
        grace = state.settings.reconcile_grace_seconds
        now = time.time()
        pending_cancels = [
            str(t.id)
            for t in running
            if t.cancel_requested_at is not None and now - t.cancel_requested_at.timestamp() > grace
        ]
        await dispatch.abort_many(state.redis, pending_cancels)
        return count

    async def _resume(self, task_id: str, worker: str, why: str) -> int:
        state = self.state
        async with state.unit_of_work() as session:
            task = await tasks.get_task(
                session=session, task_id=uuid.UUID(task_id), for_update=True
            )
            if task.status != TaskStatus.RUNNING or task.worker_name != worker:
                return 0
            await tasks.resume_task(
                session=session,
                task=task,
                reason=f"worker {worker} {why}; resumed",
            )
        await dispatch.release_in_progress(state.redis, task_id=task_id)
        if not await dispatch.job_is_queued(state.redis, task_id=task_id, queue=task.queue):
            await self._enqueue_again(task)
        log.warning("task %s resumed from dead worker %s", task_id, worker)
        return 1

    async def _enqueue_again(self, task: Task) -> None:
        redis = self.state.redis
        await dispatch.drop_job(redis, task_id=str(task.id), queue=task.queue)
        await dispatch.enqueue(
            redis,
            task_id=str(task.id),
            queue=task.queue,
            priority=task.priority,
            task_type=task.task_type,
            concurrency=effects.concurrency(task),
            rate=effects.rate(task),
        )

    async def _requeue_lost(self, beats: dict[str, WorkerBeat]) -> int:
        """Walk every QUEUED task (a page at a time, one Redis round trip per page to check
        their jobs) and enqueue again those whose job is gone; bounded work per pass. A job
        taken by a worker that died while it waited for an LLM slot is released (after two
        passes in which no live worker lists it), or it would stay taken until arq's timeout."""
        state = self.state
        grace = timedelta(seconds=state.settings.reconcile_grace_seconds)
        held = {t for b in beats.values() for t in (*b.running, *b.waiting)}
        suspects = {_s(t) for t in await state.redis.smembers(SUSPECT_JOBS)}  # type: ignore[misc]
        orphaned: set[str] = set()
        count = 0
        after: tuple[datetime, uuid.UUID] | None = None
        for _ in range(MAX_PAGES_PER_PASS):
            async with read_only(state.sessionmaker) as session:
                page = await tasks.queued_tasks_older_than(
                    session=session, age=grace, limit=PAGE, after=after
                )
            if not page:
                break
            found = await dispatch.job_states(state.redis, [(str(t.id), t.queue) for t in page])
            for task, (queued, taken) in zip(page, found, strict=True):
                task_id = str(task.id)
                if not queued:
                    await self._enqueue_again(task)
                    count += 1
                elif taken and task_id not in held:
                    if task_id in suspects:
                        await dispatch.release_in_progress(state.redis, task_id=task_id)
                        log.warning("released job %s held by a worker that is gone", task_id)
                    else:
                        orphaned.add(task_id)
            after = (page[-1].updated_at, page[-1].id)
        await _replace_set(state.redis, SUSPECT_JOBS, orphaned)
        if count:
            log.warning("reconciler re-enqueued %d QUEUED tasks missing from Redis", count)
        return count


async def _replace_set(redis: Any, key: str, members: set[str]) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if members:
            pipe.sadd(key, *members)
            pipe.expire(key, 3600)
        await pipe.execute()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
