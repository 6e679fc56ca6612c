"""Carrying out after-commit effects: publish task events, enqueue and abort arq jobs.

A task is committed QUEUED before its job is enqueued; if Redis is unreachable here the
reconciler enqueues it later, so failures are logged, not raised."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix
from redis.exceptions import RedisError

from app import events
from app.services.effects import Abort, Effect, Enqueue, TaskChanged

log = logging.getLogger(__name__)

RUN_TASK = "run_task"
QUEUE_PREFIX = "opsgraph:queue:"
# arq runs the lowest score first among jobs whose score is in the past. Shifting the score
# back by a large step per priority point makes priority strict, FIFO within one priority.
PRIORITY_STEP_MS = 1_000_000_000
JOB_EXPIRES = timedelta(days=14)


def queue_key(queue: str) -> str:
    return QUEUE_PREFIX + queue


async def enqueue(
    redis: ArqRedis, *, task_id: str, queue: str, priority: int, defer_seconds: float = 0.0
) -> bool:
    now_ms = datetime.now(UTC).timestamp() * 1000 + defer_seconds * 1000
    score_ms = now_ms - (priority * PRIORITY_STEP_MS if defer_seconds <= 0 else 0)
    job = await redis.enqueue_job(
        RUN_TASK,
        task_id,
        _job_id=task_id,
        _queue_name=queue_key(queue),
        _defer_until=datetime.fromtimestamp(score_ms / 1000, UTC),
        _expires=JOB_EXPIRES,
    )
    return job is not None


async def job_is_queued(redis: ArqRedis, *, task_id: str, queue: str) -> bool:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(job_key_prefix + task_id)
        pipe.zscore(queue_key(queue), task_id)
        exists, score = await pipe.execute()
    return bool(exists) and score is not None


async def drop_job(redis: ArqRedis, *, task_id: str, queue: str) -> None:
    """Forget a job entirely (before re-enqueueing a task whose job state is inconsistent)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(job_key_prefix + task_id, in_progress_key_prefix + task_id)
        pipe.zrem(queue_key(queue), task_id)
        await pipe.execute()


async def release_in_progress(redis: ArqRedis, *, task_id: str) -> None:
    """Let another worker pick up a job whose worker died (arq would wait for its timeout)."""
    await redis.delete(in_progress_key_prefix + task_id)


async def abort(redis: ArqRedis, *, task_id: str) -> None:
    await redis.zadd(abort_jobs_ss, {task_id: datetime.now(UTC).timestamp() * 1000})


async def carry_out(redis: ArqRedis, pending: Sequence[Effect]) -> None:
    if not pending:
        return
    try:
        snapshots = [e.snapshot for e in pending if isinstance(e, TaskChanged)]
        if snapshots:
            await events.publish_tasks(redis, snapshots)
        for e in pending:
            if isinstance(e, Enqueue):
                await enqueue(
                    redis,
                    task_id=e.task_id,
                    queue=e.queue,
                    priority=e.priority,
                    defer_seconds=e.defer_seconds,
                )
            elif isinstance(e, Abort):
                await abort(redis, task_id=e.task_id)
    except (RedisError, OSError) as exc:
        log.warning("after-commit effects not carried out (the reconciler will): %s", exc)
