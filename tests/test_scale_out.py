"""Scaling out: two API processes and two worker processes on one PostgreSQL and one Redis.
A subscriber connected to one API process sees every change of tasks submitted through the
other, and both workers share the queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client import GraphQLClient
from tests.conftest import make_token
from tests.processes import Proc, start_server

QUEUE = "scaleq"


@pytest.fixture
def second_server(env: dict[str, str], logs: Path) -> Iterator[str]:
    proc, base = start_server(env, logs)
    yield base
    proc.stop()


async def test_a_subscriber_on_one_api_sees_tasks_submitted_through_another(
    admin: GraphQLClient,
    second_server: str,
    spawn_worker: Callable[..., Proc],
    settings: Any,
) -> None:
    # two workers on one queue, two tasks at a time each: both take part
    for name in ("scale-a", "scale-b"):
        spawn_worker(name, QUEUE, concurrency=2)
    other = GraphQLClient(second_server, make_token(settings))
    try:
        async with other.subscribe("TaskUpdated", queue=QUEUE, status=["COMPLETED"]) as feed:
            # each task takes 150 ms or more: its completion comes long after the
            # subscription is registered
            ids = set()
            for i in range(16):
                submitted = await admin.data(
                    "SubmitTask",
                    input={
                        "taskType": "echo",
                        "queue": QUEUE,
                        "config": {"value": i, "simulate": {"latency_ms": 150}},
                    },
                )
                ids.add(submitted["submitTask"]["task"]["id"])
            seen: dict[str, str] = {}
            while set(seen) != ids:
                task = (await feed.next(timeout=30))["taskUpdated"]
                assert task["id"] in ids and task["status"] == "COMPLETED"
                seen[task["id"]] = task["id"]
        workers = {(await admin.data("Task", id=task_id))["task"]["workerName"] for task_id in ids}
        assert workers == {"scale-a", "scale-b"}
    finally:
        await other.aclose()
