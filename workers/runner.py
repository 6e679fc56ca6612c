"""The arq job that runs one task attempt: mark RUNNING, run the handler, record the outcome.

Retries go back through arq (`Retry`), so the job never leaves Redis between attempts; the
PostgreSQL row decides whether another attempt is due.

What an attempt's error records is what a tenant may read (the task's `errors`, a job's
`error_message`): an exception the handler did not expect is "internal error (ref …)", its
details (SQL, parameters, traceback) in this worker's log under the same ref; a data error (a
value PostgreSQL or the driver refused, a constraint of the data) fails the task at once, since
running it again would fail the same way; a provider's message loses its URLs and addresses."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from arq import Retry
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from app.db.models import Task
from app.edge.hygiene import redact_internal
from app.kernel.errors import DomainError, InvalidInput
from app.platform import dispatch
from app.platform.outages import is_data_error
from app.services.fleet.breakers import CircuitOpen
from app.services.llm import semaphore
from app.services.tasks import attempt_writes
from app.services.tasks import commands as tasks
from app.services.tasks.commands import Usage
from app.services.tasks.lifecycle import FINISHED, TaskStatus
from opsgraph.definitions import lookup
from workers.authored import HandlerFailed
from workers.consumer import HANDED_BACK_MS, handed_back_key
from workers.context import WorkerState, state_of
from workers.handlers import handler_for
from workers.providers import ProviderError

log = logging.getLogger(__name__)


async def run_task(
    ctx: dict[str, Any],
    task_id: str,
    gated: bool = False,
    priority: int = 50,
    task_type: str | None = None,
) -> None:
    state = state_of(ctx)
    if task_type is not None and handler_for(task_type) is None:
        # A mixed fleet: this worker has no handler for the type. The task goes back for a
        # worker that has one, no attempt counted (its row is not touched but for one log line).
        await _hand_back(state, task_id, task_type)
        raise Retry(defer=dispatch.retry_defer_seconds(HAND_BACK_SECONDS))
    if gated:
        delay = await _run_gated(state, task_id, priority)
    else:
        delay = await _run(state, task_id)
    if delay is not None:
        raise Retry(defer=dispatch.retry_defer_seconds(delay))


async def _run_gated(state: WorkerState, task_id: str, priority: int) -> float | None:
    """The task stays QUEUED while it waits: it becomes RUNNING only once it holds a slot.
    The wait is not part of the attempt: the attempt's timeout starts with the call, and arq's
    job timeout leaves room for `llm_slot_wait_max_seconds` of waiting."""
    settings = state.settings
    state.waiting.add(task_id)
    try:
        async with semaphore.slot(
            state.redis,
            settings.semaphore,
            priority=priority,
            name=task_id,
            max_wait=settings.llm_slot_wait_max_seconds,
            detach_release=True,
            calls=state.llm_slots,
        ):
            state.waiting.discard(task_id)
            return await _run(state, task_id)
    except semaphore.SlotWaitExpired:
        log.warning("task %s found no LLM slot in time; back to its queue", task_id)
        return 1.0
    except semaphore.LeaseLost as exc:
        # The attempt was stopped and the task put back to QUEUED (see _interrupted).
        log.warning("task %s: %s; it will run again", task_id, exc)
        return 0.5
    finally:
        state.waiting.discard(task_id)


# how long a handed-back job waits before another worker may claim it; this worker leaves it
# alone for HANDED_BACK_MS (workers/consumer.py), so a queue whose workers lack a type's
# handler never spins on its tasks
HAND_BACK_SECONDS = 1.0
MAX_HANDED_BACK = 10_000


async def _hand_back(state: WorkerState, task_id: str, task_type: str) -> None:
    """Leave the job to the other workers for a while (the claim skips it), and say once (per
    task and worker) why the task still waits."""
    try:
        key = handed_back_key(state.name)
        now_ms = time.time() * 1000
        async with state.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {task_id: now_ms})
            pipe.zremrangebyscore(key, "-inf", now_ms - HANDED_BACK_MS)
            pipe.pexpire(key, int(HANDED_BACK_MS * 2))
            await pipe.execute()
    except (RedisError, OSError) as exc:  # it comes back sooner: no harm
        log.warning("task %s: could not note the hand-back in Redis: %s", task_id, exc)
    if task_id in state.handed_back:
        return
    if len(state.handed_back) >= MAX_HANDED_BACK:
        state.handed_back.clear()
    state.handed_back.add(task_id)
    log.warning("task %s: no handler for %r here; handed back", task_id, task_type)

    async def note() -> None:
        async with state.unit_of_work() as session:
            await tasks.append_log(
                session=session,
                task_id=uuid.UUID(task_id),
                level="warning",
                message=f"worker {state.name} has no handler for {task_type!r}: "
                "waiting for a worker that serves it",
            )

    try:
        await _persist(note)
    except Exception as exc:  # the note is a courtesy: the task still goes back
        log.warning("task %s: could not note the hand-back: %s", task_id, exc)


T = TypeVar("T")
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def data_fault(exc: BaseException) -> bool:
    """The data is at fault, not the moment: a value PostgreSQL or the driver refused (SQLSTATE
    class 22), a constraint of the data (class 23), a value refused before the flush. Running
    the same task again fails the same way."""
    if isinstance(exc, InvalidInput | DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        return is_data_error(exc)
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in ("22", "23")
    # asyncpg's own refusal of an argument (out of range for its type) before sending it
    return isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError)


def new_ref() -> str:
    return uuid.uuid4().hex[:12]


def safe_error(exc: BaseException, ref: str) -> str:
    """An unexpected exception as the task records it: no exception text, a ref to the log."""
    if isinstance(exc, DomainError):  # a service's own message (a refused value names it)
        return f"{redact_internal(exc.message)[0]} (ref {ref})"
    if data_fault(exc):
        return f"data error: a value was refused by the database (ref {ref})"
    return f"internal error (ref {ref})"


def attempt_limit(state: WorkerState, task_type: str) -> float:
    """How long one attempt may run: the type's own timeout, else the installation's."""
    definition = lookup(task_type)
    if definition is not None and definition.timeout is not None:
        return definition.timeout
    return state.settings.attempt_limit(task_type)


def provider_error(task: Task, exc: ProviderError | str) -> str:
    """A provider's (or a user's handler's) message as written, less any URL, address or
    SQL (then with a ref to the log, which keeps the original)."""
    text, redacted = redact_internal(str(exc))
    if not redacted:
        return text
    ref = new_ref()
    log.warning("task %s: provider error (ref %s): %s", task.id, ref, exc)
    return f"{text} (ref {ref})"


def _transient(exc: DBAPIError) -> bool:
    if is_data_error(exc):
        return False
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return (
        exc.connection_invalidated
        or code in TRANSIENT_SQLSTATES
        or isinstance(exc, OperationalError | InterfaceError)
    )


def _transient_raw(exc: Exception) -> bool:
    """The same on the raw asyncpg connection: a lost or refused connection (classes 08 and
    57, server restarting), a deadlock or serialization failure, a broken socket."""
    if data_fault(exc):
        return False
    if isinstance(exc, asyncpg.InterfaceError | OSError):
        return True
    code = str(getattr(exc, "sqlstate", "") or "")
    return code in TRANSIENT_SQLSTATES or code[:2] in {"08", "57"}


async def _persist(write: Callable[[], Awaitable[T]]) -> T:
    """Run one unit of work, retrying a few times over a PostgreSQL blip or a deadlock; the
    writes are guarded by the task's status, so a retry never applies twice. If it still
    fails, the reconciler notices the task its worker no longer runs."""
    for attempt in range(4):
        try:
            return await write()
        except (DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            transient = _transient(exc) if isinstance(exc, DBAPIError) else _transient_raw(exc)
            if attempt == 3 or not transient:
                raise
            log.warning("database write failed (%s); retrying", exc.__class__.__name__)
            await asyncio.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


async def _run(state: WorkerState, task_id: str) -> float | None:
    async def start() -> Task | None:
        tid = uuid.UUID(task_id)
        # One autocommit statement for a task outside any workflow (most of them), shared
        # with the other attempts starting now; the unit of work for the rest, and to tell
        # why a task did not start.
        started = await state.writes.starts(tid)
        if started is not None:
            return started
        async with state.unit_of_work() as session:
            return await tasks.start_attempt(session=session, task_id=tid, worker_name=state.name)

    task = await _persist(start)
    if task is None:
        return None
    state.running.add(task_id)
    state.beat.active = len(state.running)
    try:
        return await _attempt(state, task)
    except asyncio.CancelledError:
        # Anywhere in the attempt, recording the outcome included: an operator's abort or a
        # shutdown. Settle the row before letting the cancellation through.
        await asyncio.shield(_interrupted(state, task))
        raise
    finally:
        state.running.discard(task_id)
        state.beat.active = len(state.running)


async def _attempt(state: WorkerState, task: Task) -> float | None:
    handler = handler_for(task.task_type)
    try:
        if handler is None:
            raise ProviderError(f"no handler for task type {task.task_type!r}", retryable=False)
        async with asyncio.timeout(attempt_limit(state, task.task_type)):
            result, usage = await handler(task, state)
    except TimeoutError:
        return await _failed(state, task, "attempt timed out", retryable=True)
    except HandlerFailed as exc:
        return await _failed(
            state,
            task,
            provider_error(task, exc.message),
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            usage=exc.usage,
        )
    except CircuitOpen as exc:
        return await _postponed(state, task, str(exc), exc.retry_after)
    except ProviderError as exc:
        if exc.rate_limited:
            # the provider served no call: the task waits as long as it asked (its
            # Retry-After, else the policy's first backoff) without spending a retry
            delay = exc.retry_after if exc.retry_after is not None else state.policy.delay(1)
            reason = f"provider rate limited (429); again in {delay:.1f} s (no retry spent)"
            return await _postponed(state, task, reason, delay)
        return await _failed(state, task, provider_error(task, exc), retryable=exc.retryable)
    except Exception as exc:  # a handler bug must not lose the task: record it (and retry)
        ref, data = new_ref(), data_fault(exc)
        log.error(
            "task %s: handler raised (ref %s; %s)",
            task.id,
            ref,
            "a data error: not retried" if data else "retryable",
            exc_info=exc,
        )
        return await _failed(state, task, safe_error(exc, ref), retryable=not data)

    async def complete() -> Task | None:
        if attempt_writes.is_plain(task):
            return await state.writes.completions(attempt_writes.Outcome(task, result, usage))
        async with state.unit_of_work() as session:
            return await tasks.complete_attempt(
                session=session,
                task_id=task.id,
                worker_name=state.name,
                result=result,
                usage=usage,
            )

    done = await _persist(complete)
    if done is None:
        # A cancel requested while the call ran wins over its result; otherwise the
        # reconciler handed the task to another worker.
        await _persist(lambda: _acknowledge_cancel(state, task))
        return None
    state.beat.completed += 1
    state.usage.add(usage.latency_ms, usage.model, usage.input_tokens, usage.output_tokens)
    return None


async def _acknowledge_cancel(state: WorkerState, task: Task) -> None:
    async with state.unit_of_work() as session:
        current = await _still_mine(session, state, task)
        if current is not None and current.cancel_requested_at is not None:
            await tasks.acknowledge_cancel(
                session=session, task=current, reason="finished after the request; result dropped"
            )


async def _failed(
    state: WorkerState,
    task: Task,
    error: str,
    *,
    retryable: bool,
    retry_after: float | None = None,
    usage: Usage | None = None,
) -> float | None:
    async def record() -> tuple[bool, float | None]:
        async with state.unit_of_work() as session:
            current = await _still_mine(session, state, task)
            if current is None:
                return False, None
            delay = await tasks.fail_attempt(
                session=session,
                task=current,
                error=error,
                retryable=retryable,
                policy=state.policy,
                retry_after=retry_after,
                usage=usage,
            )
            return True, delay

    mine, delay = await _persist(record)
    if mine and delay is None:
        state.beat.failed += 1
    return delay


async def _postponed(state: WorkerState, task: Task, reason: str, delay: float) -> float | None:
    """Back to QUEUED for `delay` seconds without spending an attempt (no call was served)."""

    async def record() -> float | None:
        async with state.unit_of_work() as session:
            current = await _still_mine(session, state, task)
            if current is None:
                return None
            current = await tasks.postpone_attempt(
                session=session, task=current, reason=reason, delay=delay
            )
            return delay if current.status == TaskStatus.QUEUED else None

    return await _persist(record)


async def _interrupted(state: WorkerState, task: Task) -> None:
    """Cancelled under us: an operator's cancel (acknowledge it) or a shutdown (requeue)."""
    async with state.unit_of_work() as session:
        current = await _still_mine(session, state, task)
        if current is None:
            return
        if current.cancel_requested_at is not None:
            await tasks.acknowledge_cancel(session=session, task=current)
        else:
            await tasks.resume_task(
                session=session,
                task=current,
                reason=f"worker {state.name} stopped mid-task (shutdown or lost LLM slot)",
            )
    # arq keeps the job queued; free it now rather than after its in-progress timeout.
    await dispatch.release_in_progress(state.redis, task_id=str(task.id))


async def _still_mine(session: Any, state: WorkerState, task: Task) -> Task | None:
    """Re-read the row under lock: the reconciler may have handed the task to another worker."""
    current = await tasks.get_task(session=session, task_id=task.id, for_update=True)
    if current.status != TaskStatus.RUNNING or current.worker_name != state.name:
        log.warning(
            "task %s is %s on %s now; dropping this attempt's outcome",
            task.id,
            current.status,
            current.worker_name,
        )
        return None
    assert current.status not in FINISHED
    return current
