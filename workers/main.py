"""A worker process: one arq Worker per queue sharing one concurrency limit, plus the
heartbeat and the reconciler loops."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx
import psutil
from arq import func
from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from app.config import Settings
from app.db.base import make_engine, make_raw_pool, make_sessionmaker, utcnow
from app.edge import domains
from app.platform import clock, dispatch
from app.services.fleet import heartbeats
from app.services.schedules import firing
from app.services.tasks import due, idempotency, registry
from app.services.tasks.backoff import BackoffPolicy
from app.services.workflows import waiting
from opsgraph import definitions
from opsgraph.definitions import TaskType
from workers.agent_report import report_forever
from workers.consumer import Consumer, Slots, handed_back_key
from workers.context import WorkerState
from workers.handlers import register_builtin
from workers.llm_slots import BatchedCalls
from workers.merged_redis import MergedRedis
from workers.models import make_models
from workers.monitoring import evaluate_forever
from workers.pipeline.batcher import close_due_forever
from workers.pipeline.supervision import watch_forever
from workers.providers import Provider
from workers.providers.openai import OpenAIProvider
from workers.providers.simulated import SimulatedProvider
from workers.reconciler import Reconciler
from workers.runner import run_task
from workers.webhooks import deliver_webhook, relay_forever
from workers.writes import AttemptWrites

log = logging.getLogger(__name__)
PROMOTE_INTERVAL_SECONDS = 0.1


def make_provider(settings: Settings) -> Provider:
    if settings.llm_base_url:
        return OpenAIProvider(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            chat_model=settings.llm_chat_model,
            embedding_model=settings.llm_embedding_model,
            timeout=settings.llm_timeout_seconds,
        )
    return SimulatedProvider(default_latency_ms=settings.simulated_latency_ms)


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


async def _heartbeat_loop(state: WorkerState) -> None:
    process = psutil.Process()
    while True:
        try:
            state.beat.memory_mb = round(process.memory_info().rss / 1_048_576, 1)
            state.beat.running = sorted(state.running)
            state.beat.waiting = sorted(state.waiting)
            await heartbeats.beat(
                state.redis, state.beat, ttl_seconds=state.settings.heartbeat_ttl_seconds
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis down: keep beating once it is back
            log.warning("heartbeat failed: %s", exc)
        await asyncio.sleep(state.settings.heartbeat_interval_seconds)


async def _due_loop(state: WorkerState) -> None:
    """Tasks whose time has come go to their queue (app/services/tasks/due.py): a pass every
    `due_poll_seconds`, back to back while passes come back full."""
    while True:
        try:
            async with state.unit_of_work() as session:
                done = await due.enqueue_due(session)
            if done is not None and done >= due.PASS_SIZE:
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL or Redis away: the next pass tries again
            log.warning("enqueuing due tasks failed: %s", exc)
            await asyncio.sleep(1.0)
        await asyncio.sleep(state.settings.due_poll_seconds)


async def _schedule_loop(state: WorkerState) -> None:
    """A schedule pass (`_schedule_pass`) every `schedule_poll_seconds`."""
    while True:
        try:
            await _schedule_pass(state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL away: the next pass tries again
            log.warning("firing schedules failed: %s", exc)
        await asyncio.sleep(state.settings.schedule_poll_seconds)


async def _schedule_pass(state: WorkerState) -> None:
    """Schedules whose tick has come fire (app/services/schedules/firing.py), and workflow
    steps whose sleep or wait is over move on (app/services/workflows/waiting.py), by the
    platform clock (app/platform/clock.py: the wall clock, or a test's moved one). Firing
    passes run back to back while they come back full: a thousand schedules on one tick all
    fire within its misfire grace, not a hundred a second."""
    taken = firing.PASS_SIZE
    while taken >= firing.PASS_SIZE:
        async with state.unit_of_work() as session:
            taken = await firing.fire_due(session, now=clock.now(), rules=state.settings.schedules)
    now = clock.now()
    async with state.unit_of_work() as session:
        due = await waiting.due_waits(session, now=now)
    for workflow_id, step_id in due:
        async with state.unit_of_work() as session:
            await waiting.wake(session, workflow_id=workflow_id, step_id=step_id, now=now)


REGISTER_EVERY_SECONDS = 300.0


async def _register_loop(state: WorkerState) -> None:
    """The types this process serves, in PostgreSQL for the API (which never imports them):
    at start, again until it succeeds (PostgreSQL may be away), then every few minutes (a
    registry emptied by hand fills again). Its heartbeat says it serves them now."""
    definitions = [d.definition() | {"hash": d.definition_hash()} for d in _served()]
    delay = 0.5
    while True:
        try:
            async with state.unit_of_work() as session:
                await registry.register(session=session, definitions=definitions, worker=state.name)
            delay = 0.5
            await asyncio.sleep(REGISTER_EVERY_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("registering task types failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _promote_loop(state: WorkerState) -> None:
    """Retries whose backoff is over go to the head of their queue (see dispatch)."""
    while True:
        try:
            await dispatch.promote_due_retries(state.redis, state.beat.queues)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            log.debug("promoting retries failed: %s", exc)
            await asyncio.sleep(1.0)
        await asyncio.sleep(PROMOTE_INTERVAL_SECONDS)


HOUSEKEEPING_SECONDS = 60.0


async def _housekeeping_loop(state: WorkerState) -> None:
    """Expired idempotency keys go, a batch a minute (app/services/tasks/idempotency.py)."""
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            async with state.unit_of_work() as session:
                await idempotency.purge_expired(session, now=utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL away: the next minute tries again
            log.warning("purging expired idempotency keys failed: %s", exc)


def _served() -> list[TaskType]:
    return list(definitions.defined().values())


async def build_state(settings: Settings, *, queues: list[str], concurrency: int) -> WorkerState:
    domains.install()  # the reactions its units of work and its attempt writes consult
    # opsgraph's own task types, in the registry users' types join (workers/loading.py loads
    # those; a worker built in-process, as the benchmarks build theirs, has opsgraph's own)
    register_builtin()
    name = settings.worker_name or f"worker-{os.getpid()}@{socket.gethostname()}"
    redis: ArqRedis = await create_pool(redis_settings(settings.redis_url))
    http = httpx.AsyncClient()
    # No pre-ping on the hot path: the runner retries a write that meets a dropped connection.
    engine = make_engine(settings.database_url, pool_size=min(concurrency + 2, 20), pre_ping=False)
    raw = await make_raw_pool(engine, size=min(concurrency + 1, 20))
    batch = max(concurrency, 1)  # at most one request per job running at once
    return WorkerState(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine, settings.session_info()),
        raw=raw,
        writes=AttemptWrites(raw, redis, name, batch=batch),
        llm_slots=BatchedCalls(redis, settings.semaphore, batch=batch),
        redis=redis,
        consumer_redis=MergedRedis(redis, batch=batch),
        provider=make_provider(settings),
        http=http,
        models=make_models(settings, redis, http),
        beat=heartbeats.WorkerBeat(
            name=name,
            queues=queues,
            types={d.name: d.definition_hash() for d in _served()},
            concurrency=concurrency,
            pid=os.getpid(),
            host=socket.gethostname(),
        ),
        policy=BackoffPolicy(
            base_delay=settings.retry_base_delay_seconds,
            max_delay=settings.retry_max_delay_seconds,
            exponential_base=settings.retry_exponential_base,
            jitter=settings.retry_jitter,
        ),
    )


def _soft_cancel(state: WorkerState) -> Callable[[str], float | None]:
    def tell(job_id: str) -> float | None:
        """A cancel for a running authored handler: it sees ctx.cancelled and has the grace
        to stop; any other job is cancelled at once."""
        running = state.contexts.get(job_id)
        if running is None:
            return None
        running.cancel_requested()
        return state.settings.cancel_grace_seconds

    return tell


def longest_attempt(settings: Settings) -> float:
    """The longest attempt of any type this process serves (arq's job timeout covers it)."""
    own = [d.timeout for d in definitions.defined().values() if d.timeout is not None]
    return max([settings.longest_attempt(), *own])


def build_workers(state: WorkerState, *, burst: bool = False) -> list[Consumer]:
    """One consumer (an arq Worker) per queue, sharing the process's concurrency limit."""
    settings = state.settings
    ctx: dict[str, Any] = {"opsgraph": state}
    functions = [
        func(
            run_task,
            name=dispatch.RUN_TASK,
            max_tries=10_000,
            # The attempt has its own timeout (its type's, around the call alone); arq's also
            # covers the wait for an LLM slot, bounded by its own setting.
            timeout=longest_attempt(settings) + settings.llm_slot_wait_max_seconds + 60,
            keep_result=0,
        ),
        func(
            deliver_webhook,
            name=dispatch.DELIVER_WEBHOOK,
            max_tries=1,  # retries are the outbox's (PostgreSQL), not arq's
            timeout=settings.webhook_timeout_seconds + 30,
            keep_result=0,
        ),
    ]
    # One concurrency limit for the whole process, whatever the number of queues.
    slots = Slots(state.beat.concurrency)
    workers = []
    for queue in state.beat.queues:
        w = Consumer(
            functions=functions,  # type: ignore[arg-type]
            queue_name=dispatch.queue_key(queue),
            redis_pool=state.consumer_redis,
            ctx=ctx,
            max_jobs=state.beat.concurrency,
            slots=slots,
            scan_depth=settings.worker_claim_depth,
            wait_s=settings.worker_poll_seconds,
            soft_cancel=_soft_cancel(state),
            handed_back_key=handed_back_key(state.name),
            allow_abort_jobs=True,
            handle_signals=False,
            keep_result=0,
            health_check_interval=60,
            burst=burst,
        )
        workers.append(w)
    return workers


async def close_state(state: WorkerState) -> None:
    await state.writes.published.aclose()
    await state.provider.aclose()
    await state.models.aclose()
    await state.http.aclose()
    await state.redis.aclose()
    await state.raw.close()
    await state.engine.dispose()


async def _supervise(worker: Consumer) -> None:
    """Run an arq worker loop, riding out Redis outages: the process must not exit because
    Redis restarted (the reconciler puts lost queue entries back once it is reachable)."""
    delay = 0.5
    while True:
        try:
            await worker.main()
            return
        except (RedisError, OSError) as exc:
            log.warning("%s lost Redis (%s); retrying in %.1fs", worker.queue_name, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def serving(queues: list[str]) -> list[str]:
    """The queues to consume: those asked for, and those of the users' types loaded."""
    own = [d.queue for d in definitions.defined().values() if not d.builtin]
    return list(dict.fromkeys([*queues, *own]))


async def run_worker(settings: Settings, *, queues: list[str], concurrency: int) -> None:
    clock.configure(settings.monitoring_clock_file)
    state = await build_state(settings, queues=serving(queues), concurrency=concurrency)
    redis, name = state.redis, state.name
    workers = build_workers(state)

    await heartbeats.beat(redis, state.beat, ttl_seconds=settings.heartbeat_ttl_seconds)
    loops = [
        asyncio.create_task(_heartbeat_loop(state), name="heartbeat"),
        asyncio.create_task(_register_loop(state), name="type-registry"),
        asyncio.create_task(_due_loop(state), name="due-tasks"),
        asyncio.create_task(_schedule_loop(state), name="schedules"),
        asyncio.create_task(_housekeeping_loop(state), name="housekeeping"),
        asyncio.create_task(Reconciler(state).run_forever(), name="reconciler"),
        asyncio.create_task(relay_forever(state), name="webhook-relay"),
        asyncio.create_task(_promote_loop(state), name="retry-promoter"),
        asyncio.create_task(report_forever(state), name="agent-report"),
        asyncio.create_task(evaluate_forever(state), name="alert-evaluator"),
    ]
    if set(queues) & set(settings.pipeline.queues):
        loops.append(asyncio.create_task(close_due_forever(state), name="batch-timer"))
    if settings.watch:
        loops.append(asyncio.create_task(watch_forever(state), name="camera-watcher"))
    mains = [asyncio.create_task(_supervise(w), name=f"arq:{w.queue_name}") for w in workers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker %s consuming %s with concurrency %d (provider: %s)",
        name,
        ", ".join(state.beat.queues),
        concurrency,
        state.provider.name,
    )
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *mains], return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper and t.exception() is not None]
    for t in failed:
        log.error("arq worker stopped: %r", t.exception())
    log.info("worker %s stopping", name)
    for t in [*mains, *loops, stopper]:
        t.cancel()
    # Cancel running attempts; the runner puts each back to QUEUED for another worker.
    for w in workers:
        w.handle_sig(signal.SIGTERM)
    running = [t for w in workers for t in w.tasks.values()]
    await asyncio.gather(*mains, *loops, *running, return_exceptions=True)
    with suppress(Exception):
        await heartbeats.forget(redis, name)
    await close_state(state)
    if failed:
        raise SystemExit(1)
