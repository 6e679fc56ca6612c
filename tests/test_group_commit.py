"""Group commit: submissions made at once share a transaction, a worker's concurrent starts
and completions share statements, one bad request never fails the others, and events still
arrive in lifecycle order. Real PostgreSQL, Redis, API and worker processes."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy import event, text

from app.db.base import make_sessionmaker
from app.edge import domains
from app.edge.submissions import Submissions
from app.kernel.errors import DomainError
from app.platform.group_commit import GroupCommit
from app.services.tasks.specs import TaskSpec
from tests.client import GraphQLClient
from tests.processes import Proc
from tests.stores import Stores
from tests.waiting import wait_for


@pytest.fixture
async def arq_redis(stores: Stores) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(stores.redis_url))
    yield pool
    await pool.aclose()


def spec(i: int, **overrides: Any) -> TaskSpec:
    base: dict[str, Any] = {
        "task_type": "echo",
        "queue": "grouped",
        "input": {"i": i},
        "config": {"value": i},
    }
    return TaskSpec(**{**base, **overrides})


async def test_concurrent_submissions_share_transactions(engine: Any, arq_redis: ArqRedis) -> None:
    # given a submitter, assembled as open_state assembles it (the domains' reactions
    # installed), and a count of the INSERT statements PostgreSQL receives
    domains.install()
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT INTO tasks" in statement:
            inserts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        submissions = Submissions(make_sessionmaker(engine), arq_redis)
        # when 60 callers submit at once, and one of them sends bad input
        results = await asyncio.gather(
            *(submissions.submit(spec(i)) for i in range(60)),
            submissions.submit(spec(60, priority=500)),
            return_exceptions=True,
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)

    # then the bad one alone is refused, with its own error
    assert isinstance(results[-1], DomainError) and results[-1].field == "priority"
    made = results[:-1]
    assert all(not isinstance(r, BaseException) for r in made)
    # and the 60 are stored, each with its transition, in a few statements, not 60
    assert 1 <= len(inserts) <= 10, len(inserts)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT t.status, count(*) FROM tasks t JOIN task_transitions r"
                    " ON r.task_id = t.id AND r.reason = 'submitted'"
                    " WHERE t.queue = 'grouped' GROUP BY 1"
                )
            )
        ).all()
    assert rows == [("QUEUED", 60)]
    # and every one of them is enqueued
    queued = await arq_redis.zcard("opsgraph:queue:grouped")
    assert queued == 60


async def test_one_requests_failure_stays_its_own() -> None:
    # given a write that fails whenever request 13 is in its batch
    calls: list[list[int]] = []

    async def write(batch: list[int]) -> list[int]:
        calls.append(batch)
        await asyncio.sleep(0.01)  # a write takes a while: callers arrive meanwhile (the point)
        if 13 in batch:
            raise ValueError("thirteen")
        return [n * 2 for n in batch]

    group: GroupCommit[int, int] = GroupCommit(write, max_batch=8)
    # when 30 callers write at once
    results = await asyncio.gather(*(group(n) for n in range(30)), return_exceptions=True)
    # then each gets its own answer, and only 13 sees the error
    assert [r for n, r in enumerate(results) if n != 13] == [n * 2 for n in range(30) if n != 13]
    assert isinstance(results[13], ValueError)
    # and the writes were batched (never more than 8 at once)
    assert max(len(c) for c in calls) == 8 and len(calls) < 30


async def test_a_caller_cancelled_before_its_write_is_left_out() -> None:
    in_flight: list[list[int]] = []
    written: list[int] = []
    release = asyncio.Event()

    async def write(batch: list[int]) -> list[int]:
        in_flight.append(batch)
        await release.wait()
        written.extend(batch)
        return batch

    group: GroupCommit[int, int] = GroupCommit(write, max_waiting=3)
    first = asyncio.create_task(group(1))  # its write is in flight, waiting for `release`
    await wait_for(lambda: in_flight == [[1]], what="the first request's write in flight")
    later = [asyncio.create_task(group(n)) for n in (2, 3, 4)]
    # a few turns of the event loop: the later callers queue up behind the write (nothing
    # outside the group tells when they have)
    await asyncio.sleep(0.01)
    # at most 3 wait at once: the fourth caller waits for room
    assert sum(1 for t in later if not t.done()) == 3
    later[0].cancel()  # request 2: cancelled before its batch is written
    release.set()
    assert await first == 1
    assert await asyncio.gather(later[1], later[2]) == [3, 4]
    assert written == [1, 3, 4]


async def test_a_workers_attempts_share_statements_and_events_keep_their_order(
    admin: GraphQLClient,
    spawn_worker: Callable[..., Proc],
    engine: Any,
) -> None:
    spawn_worker("grouped-worker", "grouped", concurrency=10)
    rank = {"QUEUED": 0, "RUNNING": -1, "COMPLETED": 0, "FAILED": 0, "CANCELLED": 0}
    async with admin.subscribe("TaskUpdated", queue="grouped") as feed:
        items = [
            {"taskType": "echo", "queue": "grouped", "config": {"value": i, "simulate": sim}}
            for i in range(40)
            for sim in [{"latency_ms": 5, "fail_attempts": 1 if i % 4 == 0 else 0}]
        ]
        submitted = (await admin.data("SubmitTasks", input=items))["submitTasks"]
        ids = {t["id"] for t in submitted["tasks"]}
        assert len(ids) == 40
        # each task's events arrive in lifecycle order: QUEUED(0), RUNNING(1), [QUEUED(1),
        # RUNNING(2)], COMPLETED(n), one position at a time, never backwards
        positions: dict[str, list[int]] = defaultdict(list)
        done: set[str] = set()
        while done != ids:
            try:
                task = (await feed.next(timeout=30))["taskUpdated"]
            except TimeoutError:
                pytest.fail(f"no event for 30 s; {len(ids - done)} tasks never seen COMPLETED")
            positions[task["id"]].append(2 * task["attempts"] + rank[task["status"]])
            if task["status"] == "COMPLETED":
                done.add(task["id"])
    for task_id, seen in positions.items():
        assert seen == sorted(seen), (task_id, seen)
        # failing once: its retry went through QUEUED again
        assert seen[-1] in (2, 4)

    # the 50 starts were not 50 statements: a start statement gives all its rows one
    # timestamp (a completion keeps each task's own)
    async with engine.connect() as conn:
        stamps = dict(
            (
                await conn.execute(
                    text(
                        "SELECT r.to_status, count(DISTINCT r.at) FROM task_transitions r"
                        " JOIN tasks t ON t.id = r.task_id AND t.queue = 'grouped'"
                        " WHERE r.to_status IN ('RUNNING', 'COMPLETED') GROUP BY 1"
                    )
                )
            ).all()
        )
    starts = 40 + 10  # ten of them ran twice
    assert stamps["RUNNING"] < starts and stamps["COMPLETED"] == 40, stamps
