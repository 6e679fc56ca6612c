"""Nothing is lost: a worker killed mid-task, a graceful stop, and Redis losing its queues."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_sessionmaker
from app.db.models import Task
from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.waiting import wait_for


async def test_sigkill_mid_task_is_completed_by_another_worker(
    admin: GraphQLClient, worker: Proc, spawn_worker: Callable[..., Proc]
) -> None:
    # given a worker alone on its queue, running a 3 s task
    doomed = spawn_worker("worker-doomed", "crashq")
    data = await admin.data(
        "SubmitTask",
        input={"taskType": "echo", "queue": "crashq", "config": {"simulate": {"latency_ms": 3000}}},
    )
    task_id = data["submitTask"]["task"]["id"]
    running = await wait_for_status(admin, task_id, {"RUNNING"})
    assert running["workerName"] == "worker-doomed"
    # when it is SIGKILLed mid-task and another worker serves the queue
    doomed.kill()
    spawn_worker("worker-rescuer", "crashq")
    # then the task completes on the other worker, marked as resumed
    task = await wait_for_status(admin, task_id, {"COMPLETED"}, timeout=30)
    assert task["workerName"] == "worker-rescuer"
    assert task["isResumed"] is True and task["resumeAttemptCount"] == 1
    assert task["lastResumeAttempt"] is not None
    # the interrupted attempt does not eat the retry budget
    assert task["attempts"] == 1 and task["retryCount"] == 0
    full = (await admin.data("Task", id=task_id))["task"]
    assert [t["toStatus"] for t in full["transitions"]] == [
        "QUEUED",
        "RUNNING",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
    ]
    rest = (await admin.http.get(f"/api/v1/monitoring/tasks/{task_id}")).json()
    assert rest["is_resumed"] is True and rest["resume_attempt_count"] == 1


async def test_graceful_stop_requeues_running_task(
    admin: GraphQLClient, worker: Proc, spawn_worker: Callable[..., Proc]
) -> None:
    leaving = spawn_worker("worker-leaving", "stopq")
    data = await admin.data(
        "SubmitTask",
        input={"taskType": "echo", "queue": "stopq", "config": {"simulate": {"latency_ms": 5000}}},
    )
    task_id = data["submitTask"]["task"]["id"]
    await wait_for_status(admin, task_id, {"RUNNING"})
    leaving.stop()  # SIGTERM
    assert leaving.process.returncode == 0, leaving.output()
    task = await wait_for_status(admin, task_id, {"QUEUED"}, timeout=10)
    assert task["isResumed"] is True
    spawn_worker("worker-arriving", "stopq")
    done = await wait_for_status(admin, task_id, {"COMPLETED"}, timeout=20)
    assert done["workerName"] == "worker-arriving"


async def test_queued_tasks_survive_redis_losing_everything(
    admin: GraphQLClient,
    worker: Proc,
    spawn_worker: Callable[..., Proc],
    redis_client: aioredis.Redis,
) -> None:
    # given tasks QUEUED on a queue nobody serves yet
    ids = []
    for i in range(5):
        data = await admin.data(
            "SubmitTask",
            input={
                "taskType": "echo",
                "queue": "flushq",
                "input": {"i": i},
                "config": {"simulate": {"latency_ms": 1}},
            },
        )
        ids.append(data["submitTask"]["task"]["id"])
    assert await redis_client.zcard("opsgraph:queue:flushq") == 5
    # when Redis loses all its data (as a restart without persistence does)
    await redis_client.flushdb()
    assert await redis_client.zcard("opsgraph:queue:flushq") == 0
    # then the reconciler re-enqueues them and a worker completes every one
    spawn_worker("worker-flush", "flushq")
    for task_id in ids:
        task = await wait_for_status(admin, task_id, {"COMPLETED"}, timeout=30)
        assert task["attempts"] == 1
    # and the session worker, whose heartbeat vanished too, was not treated as dead
    assert worker.process.poll() is None


async def test_task_a_live_worker_no_longer_runs_is_resumed(
    admin: GraphQLClient, worker: Proc, engine: AsyncEngine
) -> None:
    # given a task the database says worker-main runs, which worker-main does not run (as
    # after a final write that failed): nothing else would ever finish it
    data = await admin.data(
        "SubmitTask",
        input={"taskType": "echo", "queue": "parked", "config": {"simulate": {"latency_ms": 1}}},
    )
    task_id = data["submitTask"]["task"]["id"]
    async with make_sessionmaker(engine)() as session, session.begin():
        await session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task_id))
            .values(
                status="RUNNING",
                worker_name="worker-main",
                queue="default",
                updated_at=datetime.now(UTC) - timedelta(seconds=30),
            )
        )
    # then the reconciler notices from the heartbeat and the task completes
    task = await wait_for_status(admin, task_id, {"COMPLETED"}, timeout=30)
    assert task["isResumed"] is True and task["resumeAttemptCount"] == 1


async def test_reconciler_puts_back_thousands_of_lost_jobs_in_one_pass(
    worker: Proc, engine: AsyncEngine, redis_client: aioredis.Redis
) -> None:
    from app.services.tasks import specs as task_specs
    from app.services.tasks import submissions as task_submissions

    # given 2,500 QUEUED tasks whose jobs never reached Redis (written, never enqueued)
    async with make_sessionmaker(engine)() as session, session.begin():
        for _ in range(2500):
            await task_submissions.submit_task(
                session=session, spec=task_specs.TaskSpec(task_type="echo", queue="bulkq")
            )
    # then the reconciler enqueues every one of them (no worker serves the queue)
    await wait_for(
        lambda: redis_client.zcard("opsgraph:queue:bulkq"),
        until=lambda queued: queued >= 2500,
        every=0.2,
        timeout=30,
        what="all 2,500 jobs back on their queue",
    )
    assert await redis_client.zcard("opsgraph:queue:bulkq") == 2500
