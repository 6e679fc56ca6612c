"""arq's Worker, taking jobs our way: ready jobs are claimed in one Redis round trip (a script
that skips jobs other workers run), and a worker is woken the moment one of its process's
slots frees instead of at its next poll.

Why: arq reads a batch of job ids and starts them one by one, each with its own WATCH/MULTI
round trip, waiting for a free slot between them. Running jobs stay at the head of the queue
until they finish, so a batch sized to the concurrency (which keeps priorities fresh) showed a
second worker only jobs the first was running: it never ran any. A bigger batch makes the first
worker hold ids it cannot start yet (a later high-priority job waits behind them). Claiming
only as many jobs as there are free slots, from as deep into the queue as needed, gives both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from arq.constants import abort_job_max_age, abort_jobs_ss, in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from app.platform.dispatch import (
    CONCURRENCY_HELD,
    CONCURRENCY_MARKER,
    LIMITS_IN_USE,
    RATE_MARKER,
    RATE_STARTS,
)

log = logging.getLogger(__name__)

# how long a job a worker handed back is left to the others (then it may look again)
HANDED_BACK_MS = 300_000


def handed_back_key(worker: str) -> str:
    return f"opsgraph:handed-back:{worker}"


# Walks the ready jobs in score order (priority, then age) and claims up to ARGV[2] of them by
# setting the same in-progress key arq's own start sets (so arq's run/finish/abort and any
# plain arq worker agree on who runs what). ARGV[3] bounds the walk: about that many ids at
# most are looked at per call, running ones included, read a chunk at a time. A job this
# worker handed back in the last ARGV[6] ms (KEYS[2]: it has no handler for its type) is left
# for the others. A job with a concurrency marker (ARGV[7] .. id: "<limit>|<key>", written
# beside it by app/platform/dispatch.py) is claimed only while fewer than <limit> jobs hold a
# lease in its key's set (ARGV[8] .. key: job ids scored by their lease's end, as long as the
# in-progress key's; a crashed worker's lease runs out); otherwise it stays in the queue, in
# its place, holding no slot, for a later claim. A job with a rate marker (ARGV[9] .. id:
# "<n>|<window ms>|<key>") is claimed only while fewer than <n> jobs of the key started in the
# last window (ARGV[10] .. key: a log of starts, scored by their time). Each claim answers id,
# score, and the set it holds a lease in ('-' for a rate-limited job holding none, '' for an
# unmarked job). While no job has a marker (ARGV[11] unset), no marker is read.
_CLAIM = """
local now, want, depth, chunk = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), 64
local refused_since = now - tonumber(ARGV[6])
local lease = tonumber(ARGV[4])
-- leases and rate windows on Redis's clock: workers on hosts with skewed clocks agree
local t = redis.call('time')
local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limits = redis.call('exists', ARGV[11]) == 1
local claimed, offset = {}, 0
while offset < depth do
  local ids = redis.call(
    'zrangebyscore', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, chunk)
  for i = 1, #ids, 2 do
    local id = ids[i]
    local refused = redis.call('zscore', KEYS[2], id)
    if not refused or tonumber(refused) < refused_since then
      local held, room, starts, window = '', true, '', 0
      local marker = limits and redis.call('get', ARGV[7] .. id)
      if marker then
        local sep = string.find(marker, '|', 1, true)
        held = ARGV[8] .. string.sub(marker, sep + 1)
        redis.call('zremrangebyscore', held, '-inf', rnow)
        room = redis.call('zcard', held) < tonumber(string.sub(marker, 1, sep - 1))
      end
      local rate = limits and room and redis.call('get', ARGV[9] .. id)
      if rate then
        local a = string.find(rate, '|', 1, true)
        local b = string.find(rate, '|', a + 1, true)
        window = tonumber(string.sub(rate, a + 1, b - 1))
        starts = ARGV[10] .. string.sub(rate, b + 1)
        redis.call('zremrangebyscore', starts, '-inf', rnow - window)
        room = redis.call('zcard', starts) < tonumber(string.sub(rate, 1, a - 1))
      end
      if room and redis.call('set', ARGV[5] .. id, '1', 'NX', 'PX', lease) then
        if held ~= '' then redis.call('zadd', held, rnow + lease, id) end
        if starts ~= '' then
          redis.call('zadd', starts, rnow, id .. ':' .. rnow)
          redis.call('pexpire', starts, window)
        end
        claimed[#claimed + 1] = id
        claimed[#claimed + 1] = ids[i + 1]
        if held == '' and starts ~= '' then held = '-' end  -- marked, holding no lease
        claimed[#claimed + 1] = held
        if #claimed >= 3 * want then return claimed end
      end
    end
  end
  if #ids < 2 * chunk then return claimed end
  offset = offset + chunk
end
return claimed
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Slots(asyncio.BoundedSemaphore):
    """The process's concurrency limit, shared by its per-queue workers; wakes all of them when
    a slot frees (any of them may have a job for it)."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self._capacity = value
        self._wakers: list[asyncio.Event] = []

    @property
    def free(self) -> int:
        return self._capacity - self.running

    @property
    def running(self) -> int:
        return self._capacity - self._value

    def waker(self) -> asyncio.Event:
        event = asyncio.Event()
        self._wakers.append(event)
        return event

    def release(self) -> None:
        super().release()
        for event in self._wakers:
            event.set()

    def unreserve(self, n: int) -> None:
        """Give back slots taken for a claim that found fewer jobs, waking nobody: nothing
        finished, and a wake would send the claimer straight back to an empty queue."""
        for _ in range(n):
            super().release()


class Consumer(Worker):
    """One queue's consumer. `scan_depth` bounds how many ready ids one claim looks at: jobs
    other workers run sit at the head of the queue, so it must exceed the number of jobs all
    workers on the queue run at once.

    A job's slot frees when its work is done, not when arq's clean-up transaction (its
    in-progress key and queue entry, removed together) returns: until that lands the job is
    still marked in progress, so no claim takes it again, and a process that dies before it
    lands leaves what a crash after the work always left (the job runs again once its
    in-progress key expires; the task's row, no longer QUEUED, makes that a no-op). At most
    `max_jobs` clean-ups are under way; beyond that a job waits for its own."""

    def __init__(
        self,
        *args: Any,
        slots: Slots,
        scan_depth: int,
        wait_s: float,
        soft_cancel: Callable[[str], float | None] = lambda job_id: None,
        handed_back_key: str = "",
        **kwargs: Any,
    ):
        # arq's own loop must not sleep between iterations: ours waits for a slot or a tick
        super().__init__(*args, poll_delay=0, **kwargs)
        self.sem = slots
        self.slots = slots
        self.scan_depth = scan_depth
        self.wait_s = wait_s
        self._wake = slots.waker()
        self._claim = self.pool.register_script(_CLAIM)
        # the last claim found fewer ready jobs than it had slots for: wait for a tick
        self._drained = False
        self._aborts_checked = 0.0
        self._finishing: set[asyncio.Task[None]] = set()
        # told first of an abort: a handler's grace (seconds) before its job is cancelled, or
        # None to cancel at once
        self.soft_cancel = soft_cancel
        self._aborting: set[str] = set()
        # this worker's jobs handed back for want of a handler (workers/runner.py)
        self.handed_back_key = handed_back_key or "opsgraph:handed-back:-"
        # the concurrency key sets this worker's running jobs hold a lease in, and its running
        # jobs with limit markers (deleted when the job is done)
        self._holds: dict[str, str] = {}
        self._marked: set[str] = set()

    async def _cancel_aborted_jobs(self) -> None:
        """arq's abort, with a grace: a job whose handler watches for cancellation is told
        first and cancelled only if it is still running once its grace is over."""
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.zrange(abort_jobs_ss, start=0, end=-1)
            pipe.zremrangebyscore(
                abort_jobs_ss, min=timestamp_ms() + abort_job_max_age, max=float("inf")
            )
            ids, _ = await pipe.execute()
        seen: list[str] = []
        for raw in ids:
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            task = self.job_tasks.get(job_id)
            if task is None:
                continue
            seen.append(job_id)
            if job_id in self._aborting:
                continue
            grace = self.soft_cancel(job_id)
            if grace is None or grace <= 0:
                self._abort(job_id, task)
            else:
                self._aborting.add(job_id)
                self.loop.call_later(grace, self._abort, job_id, task)
        if seen:
            await self.pool.zrem(abort_jobs_ss, *seen)

    def _abort(self, job_id: str, task: asyncio.Task[Any]) -> None:
        self._aborting.discard(job_id)
        if not task.done():
            self.aborting_tasks.add(job_id)
            task.cancel()

    async def _release_hold(self, job_id: str) -> None:
        """Its work done, a job gives its concurrency key's lease back (the next claim may
        start another job of the key); if this fails, the lease runs out."""
        held = self._holds.pop(job_id, None)
        if held is not None:
            try:
                await self.pool.zrem(held, job_id)
            except Exception as exc:
                log.warning("releasing job %s's concurrency lease failed: %s", job_id, exc)

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        await self._release_hold(job_id)
        if job_id in self._marked:
            self._marked.discard(job_id)
            await self._forget_markers(job_id)
        await super().finish_failed_job(job_id, result_data)

    async def finish_job(self, job_id: str, finish: bool, *args: Any) -> None:
        await self._release_hold(job_id)
        if job_id in self._marked:
            self._marked.discard(job_id)
            if finish:  # the job leaves its queue (not a retry): its limit markers go with it
                await self._forget_markers(job_id)
        await self._finish(job_id, finish, *args)

    async def _forget_markers(self, job_id: str) -> None:
        try:
            await self.pool.delete(CONCURRENCY_MARKER + job_id, RATE_MARKER + job_id)
        except Exception as exc:  # they expire with the job's own time
            log.warning("deleting job %s's limit markers failed: %s", job_id, exc)

    async def _finish(self, job_id: str, *args: Any) -> None:
        if len(self._finishing) >= self.max_jobs:
            await super().finish_job(job_id, *args)
            return
        finishing = self.loop.create_task(self._finish_detached(job_id, *args))
        self._finishing.add(finishing)
        finishing.add_done_callback(self._finishing.discard)
        # arq's close (and a burst worker's last wait) gathers `tasks`: it waits for these
        self.tasks[f"{job_id}:finishing:{id(finishing)}"] = finishing

    async def _finish_detached(self, job_id: str, *args: Any) -> None:
        try:
            await super().finish_job(job_id, *args)
        except Exception as exc:  # the job runs again after its in-progress key expires
            log.warning("finishing job %s in Redis failed: %s", job_id, exc)

    async def _poll_iteration(self) -> None:
        # wait for a slot to free or a tick to pass (new jobs are found by the tick)
        if self.slots.free == 0 or self.job_counter >= self.max_jobs or self._drained:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.wait_s)
        self._wake.clear()
        await self._claim_and_start()
        # arq looks for abort requests on every iteration; ours run once per freed slot, so
        # that would be a round trip per job: look once per tick instead.
        now = self.loop.time()
        if self.allow_abort_jobs and now - self._aborts_checked >= self.wait_s:
            self._aborts_checked = now
            await self._cancel_aborted_jobs()
        for job_id, t in list(self.tasks.items()):
            if t.done():
                del self.tasks[job_id]
                t.result()  # errors in arq's run_job propagate, as in arq's own loop
        await self.heart_beat()

    async def _claim_and_start(self) -> None:
        want = min(self.slots.free, self.max_jobs - self.job_counter)
        if want <= 0 or not self.allow_pick_jobs:
            return
        # Take the slots before the claim's round trip, so that the process's other queues
        # cannot take them meanwhile: a claimed job never waits for a slot. (They are free:
        # acquiring them does not wait.)
        for _ in range(want):
            await self.sem.acquire()
        try:
            claimed = await self._claim(
                keys=[self.queue_name, self.handed_back_key],
                args=[
                    timestamp_ms(),
                    want,
                    self.scan_depth,
                    int(self.in_progress_timeout_s * 1000),
                    in_progress_key_prefix,
                    int(HANDED_BACK_MS),
                    CONCURRENCY_MARKER,
                    CONCURRENCY_HELD,
                    RATE_MARKER,
                    RATE_STARTS,
                    LIMITS_IN_USE,
                ],
            )
        except BaseException:
            self.slots.unreserve(want)
            raise
        self._drained = len(claimed) < 3 * want
        self.slots.unreserve(want - len(claimed) // 3)
        for i in range(0, len(claimed), 3):
            job_id, held = _text(claimed[i]), _text(claimed[i + 2])
            score = int(float(claimed[i + 1]))
            if held:
                self._marked.add(job_id)
            if held and held != "-":
                self._holds[job_id] = held
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
