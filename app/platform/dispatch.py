"""Carrying out after-commit effects: publish task events, enqueue and abort arq jobs.

A task is committed QUEUED before its job is enqueued; if Redis is unreachable here the
reconciler enqueues it later, so failures are logged, not raised."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import serialize_job
from redis.exceptions import RedisError

from app.kernel.effects import (
    Abort,
    Effect,
    Enqueue,
    Published,
    TaskChanged,
    Webhook,
    WorkflowChanged,
)
from app.platform import events

log = logging.getLogger(__name__)

RUN_TASK = "run_task"
DELIVER_WEBHOOK = "deliver_webhook"
QUEUE_PREFIX = "opsgraph:queue:"
# arq runs the lowest score first among jobs whose score is in the past. Shifting the score
# back by a large step per priority point makes priority strict, FIFO within one priority.
PRIORITY_STEP_MS = 1_000_000_000
JOB_EXPIRES = timedelta(days=14)


# A retry waits out its backoff far in the future (arq's Retry adds the delay to "now"), so
# its score says when it is due; once due it is moved to the head of its queue's present jobs
# (ahead of every priority), as README promises. See `promote_due_retries`.
RETRY_OFFSET_MS = 200 * PRIORITY_STEP_MS
HEAD_OFFSET_MS = 101 * PRIORITY_STEP_MS

_PROMOTE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local offset, head = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Only far-future scores: every other job scores at most "now" plus a short defer, so it is
-- never moved (a running job's score must stay as arq read it: its retry adds to it).
local due = redis.call(
  'zrangebyscore', KEYS[1], now + offset / 2, offset + now, 'WITHSCORES', 'LIMIT', 0, 1000)
for i = 1, #due, 2 do
  redis.call('zadd', KEYS[1], 'XX', tonumber(due[i + 1]) - offset - head, due[i])
end
return #due / 2
"""


def retry_defer_seconds(delay: float) -> float:
    """What to hand arq's Retry so the job waits `delay` and is then promoted to the head."""
    return RETRY_OFFSET_MS / 1000 + max(delay, 0.0)


async def promote_due_retries(redis: ArqRedis, queues: Sequence[str]) -> int:
    """Move retries whose backoff is over to the head of their queue (one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.eval(_PROMOTE_LUA, 1, queue_key(queue), str(RETRY_OFFSET_MS), str(HEAD_OFFSET_MS))
        moved = await pipe.execute()
    return sum(int(m) for m in moved)


def queue_key(queue: str) -> str:
    return QUEUE_PREFIX + queue


# arq's enqueue_job (WATCH, EXISTS, MULTI, SET, ZADD) as one script, so a unit of work's
# enqueues and event publishes travel to Redis in a single pipelined round trip. Same keys,
# same job encoding (arq.jobs.serialize_job), same dedupe rule (no job or result key yet).
_ENQUEUE_LUA = """
if redis.call('exists', KEYS[1], KEYS[3]) == 0 then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('zadd', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


def _score_ms(priority: int, defer_seconds: float) -> int:
    now_ms = time.time() * 1000 + defer_seconds * 1000
    return int(now_ms - (priority * PRIORITY_STEP_MS if defer_seconds <= 0 else 0))


# Concurrency keys: beside a job whose task has a key, a marker "<limit>|<scoped key>" (kept as
# long as the job); the workers' claim (workers/consumer.py) reads it and holds a lease on the
# key's set while the job runs, so at most <limit> jobs of a key run across the fleet.
CONCURRENCY_MARKER = "opsgraph:concurrency:"
CONCURRENCY_HELD = "opsgraph:concurrency-held:"
# Rate limits the same way: a marker "<n>|<window ms>|<scoped key>" beside the job; the claim
# takes it only while fewer than <n> jobs of the key started in the last window (a log of
# start times per key).
RATE_MARKER = "opsgraph:rate:"
RATE_STARTS = "opsgraph:rate-starts:"
# set (for as long as a marker lives) while any job has a marker: without it the claim reads
# no marker at all (an installation that uses no limits pays nothing for them)
LIMITS_IN_USE = "opsgraph:limits-in-use"


def mark_limits(pipe: Any, task_id: str, concurrency: str | None, rate: str | None = None) -> None:
    """Write a job's limit markers (before the job itself, in the same pipeline)."""
    expires = int(JOB_EXPIRES.total_seconds() * 1000)
    if concurrency is not None:
        pipe.set(CONCURRENCY_MARKER + task_id, concurrency, px=expires)
    if rate is not None:
        pipe.set(RATE_MARKER + task_id, rate, px=expires)
    if concurrency is not None or rate is not None:
        pipe.set(LIMITS_IN_USE, 1, px=expires)


# Task types whose calls go through the LLM priority semaphore.
GATED_TYPES = frozenset({"llm", "analysis", "prompt_test", "evaluation", "ai_processing"})


def _enqueue_args(
    task_id: str, queue: str, priority: int, task_type: str, defer_seconds: float
) -> tuple[list[str], list[Any]]:
    # The job carries what the worker needs before it reads the row: whether to wait for an
    # LLM slot, at which priority, and its type (a worker without its handler hands it back).
    job_args = (task_id, task_type in GATED_TYPES, priority, task_type)
    return _job_args(RUN_TASK, job_args, task_id, queue, _score_ms(priority, defer_seconds))


def _job_args(
    function: str, args: tuple[Any, ...], job_id: str, queue: str, score_ms: int
) -> tuple[list[str], list[Any]]:
    job = serialize_job(function, args, {}, None, int(time.time() * 1000))
    keys = [job_key_prefix + job_id, queue_key(queue), result_key_prefix + job_id]
    expires_ms = int(JOB_EXPIRES.total_seconds() * 1000)
    return keys, [job, expires_ms, score_ms, job_id]


async def enqueue(
    redis: ArqRedis,
    *,
    task_id: str,
    queue: str,
    priority: int,
    task_type: str,
    defer_seconds: float = 0.0,
    concurrency: str | None = None,
    rate: str | None = None,
) -> bool:
    keys, args = _enqueue_args(task_id, queue, priority, task_type, defer_seconds)
    if concurrency is not None or rate is not None:  # the claim must see them with the job
        async with redis.pipeline(transaction=False) as pipe:
            mark_limits(pipe, task_id, concurrency, rate)
            await pipe.execute()
    return bool(await redis.register_script(_ENQUEUE_LUA)(keys=keys, args=args))


async def job_is_queued(redis: ArqRedis, *, task_id: str, queue: str) -> bool:
    return (await jobs_queued(redis, [(task_id, queue)]))[0]


async def jobs_queued(redis: ArqRedis, jobs: Sequence[tuple[str, str]]) -> list[bool]:
    """For each (task id, queue): is its job stored and in its queue? One round trip."""
    return [queued for queued, _ in await job_states(redis, jobs)]


async def job_states(redis: ArqRedis, jobs: Sequence[tuple[str, str]]) -> list[tuple[bool, bool]]:
    """For each (task id, queue): (stored and in its queue, taken by some worker)."""
    if not jobs:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for task_id, queue in jobs:
            pipe.exists(job_key_prefix + task_id)
            pipe.zscore(queue_key(queue), task_id)
            pipe.exists(in_progress_key_prefix + task_id)
        found = await pipe.execute()
    return [
        (bool(found[3 * i]) and found[3 * i + 1] is not None, bool(found[3 * i + 2]))
        for i in range(len(jobs))
    ]


async def abort_many(redis: ArqRedis, task_ids: Sequence[str]) -> None:
    if task_ids:
        now = time.time() * 1000
        await redis.zadd(abort_jobs_ss, {t: now for t in task_ids})


async def drop_job(redis: ArqRedis, *, task_id: str, queue: str) -> None:
    """Forget a job entirely (before re-enqueueing a task whose job state is inconsistent)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(job_key_prefix + task_id, in_progress_key_prefix + task_id)
        pipe.zrem(queue_key(queue), task_id)
        await pipe.execute()


# a job's in-progress key and its concurrency lease, given back together
_RELEASE_LUA = """
redis.call('del', KEYS[1])
local marker = redis.call('get', KEYS[2])
if marker then
  local sep = string.find(marker, '|', 1, true)
  redis.call('zrem', ARGV[1] .. string.sub(marker, sep + 1), ARGV[2])
end
"""


async def release_in_progress(redis: ArqRedis, *, task_id: str) -> None:
    """Let another worker pick up a job whose worker died or stopped (arq would wait for its
    timeout), and give back the lease it held on its concurrency key."""
    await redis.eval(  # type: ignore[misc]
        _RELEASE_LUA,
        2,
        in_progress_key_prefix + task_id,
        CONCURRENCY_MARKER + task_id,
        CONCURRENCY_HELD,
        task_id,
    )


async def abort(redis: ArqRedis, *, task_id: str) -> None:
    await redis.zadd(abort_jobs_ss, {task_id: time.time() * 1000})


def _eval_enqueue(pipe: Any, keys: list[str], args: list[Any]) -> None:
    # EVAL, not a registered script: redis-py checks SCRIPT EXISTS before every pipeline that
    # holds a registered script (one more round trip); Redis caches the compiled EVAL anyway.
    pipe.eval(_ENQUEUE_LUA, len(keys), *keys, *args)


async def carry_out(redis: ArqRedis, pending: Sequence[Effect]) -> None:
    if not pending:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for e in pending:
                if isinstance(e, TaskChanged):
                    events.publish_task(pipe, e.snapshot)
                elif isinstance(e, Enqueue):
                    mark_limits(pipe, e.task_id, e.concurrency, e.rate)
                    keys, args = _enqueue_args(
                        e.task_id, e.queue, e.priority, e.task_type, e.defer_seconds
                    )
                    _eval_enqueue(pipe, keys, args)
                elif isinstance(e, Abort):
                    pipe.zadd(abort_jobs_ss, {e.task_id: time.time() * 1000})
                elif isinstance(e, WorkflowChanged):
                    events.publish_workflow(pipe, e.workflow_id, e.status, e.tenant_id)
                elif isinstance(e, Published):
                    events.publish(pipe, e.kind, e.key, e.data)
                elif isinstance(e, Webhook):
                    keys, args = _job_args(
                        DELIVER_WEBHOOK,
                        (e.delivery_id,),
                        f"webhook:{e.delivery_id}",
                        e.queue,
                        _score_ms(0, 0.0),
                    )
                    _eval_enqueue(pipe, keys, args)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("after-commit effects not carried out (the reconciler will): %s", exc)
