"""A real Redis restart mid-run (without persistence, so every queue entry is gone): the API and
the worker ride it out, and the reconciler puts the QUEUED tasks back; none is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.platform.embedded import start_redis
from tests.client import GraphQLClient
from tests.conftest import make_token, wait_for_status
from tests.processes import Proc, start_server, start_worker


async def test_redis_restart_loses_no_task(
    env: dict[str, str], logs: Path, tmp_path: Path, settings: object
) -> None:
    redis = start_redis(tmp_path, persist=False)
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    own = {**env, "OPSGRAPH_REDIS_URL": redis.url}
    proc, base = start_server(own, logs)
    worker: Proc | None = None
    client = GraphQLClient(base, make_token(settings))  # type: ignore[arg-type]
    try:
        # given tasks queued while no worker runs
        ids = []
        for i in range(5):
            data = await client.data(
                "SubmitTask",
                input={
                    "taskType": "echo",
                    "queue": "default",
                    "input": {"i": i},
                    "config": {"simulate": {"latency_ms": 1}},
                },
            )
            ids.append(data["submitTask"]["task"]["id"])
        # when Redis restarts empty
        redis.stop()
        redis = start_redis(tmp_path, persist=False, port=port)
        # then a worker started now, and the API, carry on; every task completes
        worker = start_worker(own, logs, name="worker-after-restart", queues="default")
        for task_id in ids:
            await wait_for_status(client, task_id, {"COMPLETED"}, timeout=30)

        # and a second restart while the worker runs: it survives and keeps working
        redis.stop()
        await asyncio.sleep(1.0)  # Redis stays away a while: the worker riding that out is tested
        redis = start_redis(tmp_path, persist=False, port=port)
        assert worker.process.poll() is None, worker.output()[-2000:]
        data = await client.data(
            "SubmitTask",
            input={
                "taskType": "echo",
                "queue": "default",
                "config": {"simulate": {"latency_ms": 1}},
            },
        )
        await wait_for_status(client, data["submitTask"]["task"]["id"], {"COMPLETED"}, timeout=30)
        assert (await client.http.get("/readyz")).status_code == 200
    finally:
        await client.aclose()
        if worker is not None:
            worker.stop()
        proc.stop()
        redis.stop()
