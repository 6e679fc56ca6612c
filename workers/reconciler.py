"""The reconciler: puts back QUEUED tasks whose job vanished from Redis and recovers RUNNING
tasks whose worker stopped heartbeating. One pass at a time across all workers (a Redis lock)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app import dispatch
from app.db.models import Task
from app.services import tasks
from app.services.heartbeats import live_workers
from app.services.lifecycle import TaskStatus
from app.uow import read_only, unit_of_work
from workers.context import WorkerState

log = logging.getLogger(__name__)
LOCK_KEY = "opsgraph:reconciler:lock"
PAGE = 1000
MAX_PAGES_PER_PASS = 100  # up to 100,000 queued tasks checked per pass


@dataclass
class Reconciler:
    state: WorkerState
    # Workers seen without a heartbeat once; recovered only when still silent next pass, so a
    # Redis restart (which wipes heartbeats of live workers too) does not trigger recoveries.
    suspects: set[str] = field(default_factory=set)

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
        resumed = await self._recover_running()
        requeued = await self._requeue_lost()
        return {"resumed": resumed, "requeued": requeued}

    async def _recover_running(self) -> int:
        state = self.state
        async with read_only(state.sessionmaker) as session:
            running = await tasks.running_tasks(session=session)
        by_worker: dict[str, list[Task]] = {}
        for t in running:
            by_worker.setdefault(t.worker_name or "", []).append(t)
        beats = {b.name: b for b in await live_workers(state.redis)}
        silent = {w for w in by_worker if w != state.name and w not in beats}
        dead = silent & self.suspects
        self.suspects = silent - dead
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
        return count

    async def _resume(self, task_id: str, worker: str, why: str) -> int:
        state = self.state
        async with unit_of_work(state.sessionmaker, state.redis) as session:
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
        )

    async def _requeue_lost(self) -> int:
        """Walk every QUEUED task (a page at a time, one Redis round trip per page to check
        their jobs) and enqueue again those whose job is gone; bounded work per pass."""
        state = self.state
        grace = timedelta(seconds=state.settings.reconcile_grace_seconds)
        count = 0
        after: tuple[datetime, uuid.UUID] | None = None
        for _ in range(MAX_PAGES_PER_PASS):
            async with read_only(state.sessionmaker) as session:
                page = await tasks.queued_tasks_older_than(
                    session=session, age=grace, limit=PAGE, after=after
                )
            if not page:
                break
            present = await dispatch.jobs_queued(state.redis, [(str(t.id), t.queue) for t in page])
            for task, ok in zip(page, present, strict=True):
                if not ok:
                    await self._enqueue_again(task)
                    count += 1
            after = (page[-1].updated_at, page[-1].id)
        if count:
            log.warning("reconciler re-enqueued %d QUEUED tasks missing from Redis", count)
        return count
