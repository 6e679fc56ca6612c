"""A worker's Redis traffic, batched: transactions its jobs send at once go as one (and each
caller still gets its own replies and its own errors), LLM slot acquires and releases made at
once share one script call (in arrival order, within the bound), and a burst of jobs leaves
no job, queue entry or in-progress key behind although slots free before arq's clean-up
lands. Real Redis; round trips counted on the client's socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import func
from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import ResponseError

from app.services.llm import semaphore
from app.services.llm.semaphore import SemaphoreConfig
from tests.stores import Stores
from workers.consumer import Consumer, Slots
from workers.llm_slots import BatchedCalls
from workers.merged_redis import MergedRedis


class Counted(Connection):
    """A connection that counts what it writes to its socket (one write per round trip)."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        Counted.writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(stores: Stores) -> AsyncIterator[ArqRedis]:
    # the test server and database (TCP, as the test stores serve it), counted
    pool = ArqRedis(ConnectionPool.from_url(stores.redis_url, connection_class=Counted))
    await pool.ping()  # a connection's set-up (client name, database) is not what is counted
    Counted.writes = 0
    yield pool
    await pool.aclose(close_connection_pool=True)


async def test_transactions_sent_at_once_go_as_one_and_answer_each_caller(
    counted: ArqRedis,
) -> None:
    merged = MergedRedis(counted, batch=10)

    async def transaction(i: int) -> list[Any]:
        async with merged.pipeline(transaction=True) as pipe:
            pipe.set(f"t:merged:{i}", i)
            pipe.incr(f"t:merged:{i}")
            return await pipe.execute()  # type: ignore[no-any-return]

    before = Counted.writes
    answers = await asyncio.gather(*(transaction(i) for i in range(5)))
    assert answers == [[True, i + 1] for i in range(5)]
    assert Counted.writes - before == 1, "five transactions, one round trip"

    # a command failing inside the merged transaction fails its own caller only, and the
    # others' commands are applied exactly once (nothing is sent twice)
    await counted.set("t:merged:string", "x")

    async def failing() -> list[Any]:
        async with merged.pipeline(transaction=True) as pipe:
            pipe.lpush("t:merged:string", 1)  # WRONGTYPE
            return await pipe.execute()  # type: ignore[no-any-return]

    before = Counted.writes
    results = await asyncio.gather(
        transaction(10), failing(), transaction(11), return_exceptions=True
    )
    assert results[0] == [True, 11] and results[2] == [True, 12]
    assert isinstance(results[1], ResponseError) and "WRONGTYPE" in str(results[1])
    assert Counted.writes - before == 1
    assert await counted.get("t:merged:10") == b"11"

    # a transaction Redis refuses whole (nothing applied) is sent again alone, and only the
    # bad one fails
    async def refused() -> list[Any]:
        async with merged.pipeline(transaction=True) as pipe:
            pipe.execute_command("SET", "t:merged:bad")  # wrong arity: EXECABORT
            return await pipe.execute()  # type: ignore[no-any-return]

    results = await asyncio.gather(transaction(20), refused(), return_exceptions=True)
    assert results[0] == [True, 21]
    assert isinstance(results[1], ResponseError)
    assert await counted.get("t:merged:20") == b"21"

    # a WATCHing pipeline (arq's enqueue) goes on its own, unmerged, and still works
    job = await merged.enqueue_job("noop", _job_id="t-merged-job", _queue_name="t:merged:q")
    assert job is not None
    assert await counted.zcard("t:merged:q") == 1
    await counted.delete(*[k async for k in counted.scan_iter("t:merged:*")])
    await counted.delete("arq:job:t-merged-job")


async def test_slot_requests_made_at_once_share_one_call_in_arrival_order(
    counted: ArqRedis,
) -> None:
    config = SemaphoreConfig(max_concurrent=2, reserved_high_priority=0)
    calls = BatchedCalls(counted, config, batch=10)
    # the scripts loaded in the server (a first call may be refused and sent again whole)
    await calls.try_acquire("warm-up", "low")
    await calls.release("warm-up")

    before = Counted.writes
    admitted = await asyncio.gather(*(calls.try_acquire(f"w{i}", "low") for i in range(5)))
    assert Counted.writes - before == 1, "five acquires, one script call"
    # the first two (in the order they asked) hold the two slots; the rest wait in line
    assert [a is not None for a in admitted] == [True, True, False, False, False]
    assert await counted.zrange(semaphore.HOLDERS, 0, -1) == [b"w0", b"w1"]
    assert await counted.zrange(semaphore.WAIT["low"], 0, -1) == [b"w2", b"w3", b"w4"]

    before = Counted.writes
    await asyncio.gather(calls.release("w0"), calls.release("w1"))
    assert Counted.writes - before == 1, "two releases, one script call"
    assert await counted.zcard(semaphore.HOLDERS) == 0
    # the head of the line is told it may try
    assert await counted.lpop(semaphore.WAKE + "w2") is not None

    again = await asyncio.gather(*(calls.try_acquire(f"w{i}", "low") for i in (2, 3, 4)))
    assert [a is not None for a in again] == [True, True, False]
    assert await counted.zcard(semaphore.HOLDERS) == 2
    await asyncio.gather(*(calls.release(f"w{i}") for i in (2, 3, 4)))
    assert await counted.zcard(semaphore.HOLDERS) == 0
    assert await counted.zcard(semaphore.WAIT["low"]) == 0


async def test_a_burst_of_jobs_leaves_nothing_behind_and_runs_each_once(
    stores: Stores,
) -> None:
    pool = await create_pool(RedisSettings.from_dsn(stores.redis_url))
    queue = "t:consumer:queue"
    runs: dict[str, int] = {}
    running = 0
    most = 0

    async def job(ctx: dict[str, Any], n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        runs[ctx["job_id"]] = runs.get(ctx["job_id"], 0) + 1
        await asyncio.sleep(0)  # a job that yields, so jobs overlap (the bound is tested)
        running -= 1

    for i in range(200):
        await pool.enqueue_job("job", i, _job_id=f"t-burst-{i}", _queue_name=queue)
    merged = MergedRedis(pool, batch=5)
    consumer = Consumer(
        functions=[func(job, name="job", keep_result=0)],  # type: ignore[list-item]
        queue_name=queue,
        redis_pool=merged,
        max_jobs=5,
        slots=Slots(5),
        scan_depth=100,
        wait_s=0.05,
        burst=True,
        handle_signals=False,
        keep_result=0,
    )
    await asyncio.wait_for(consumer.main(), 60)
    assert sorted(runs) == sorted(f"t-burst-{i}" for i in range(200))
    assert set(runs.values()) == {1}, "no job ran twice"
    assert most <= 5
    # every job's clean-up landed: no queue entry, job, retry or in-progress key is left
    assert await pool.zcard(queue) == 0
    left = [k async for k in pool.scan_iter("arq:*t-burst-*")]
    assert left == []
    await pool.aclose()
