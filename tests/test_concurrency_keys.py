"""Concurrency keys (issue 33): at most `limit` tasks of one key run at once across the fleet;
the others wait in the queue holding no worker slot, and a crashed worker's hold is given
back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.test_own_task_types import types_served


def keyed(queue: str, key: str, limit: int, latency_ms: int) -> dict[str, Any]:
    return {
        "taskType": "echo",
        "queue": queue,
        "concurrencyKey": key,
        "concurrencyLimit": limit,
        "config": {"simulate": {"latency_ms": latency_ms}},
    }


async def submitted(admin: GraphQLClient, items: list[dict[str, Any]]) -> list[str]:
    payload = (await admin.data("SubmitTasks", input=items))["submitTasks"]
    assert payload["errors"] == [], payload
    return [t["id"] for t in payload["tasks"]]


def most_at_once(tasks: list[dict[str, Any]]) -> int:
    """The most of these tasks that ran at the same moment (from their start and end)."""
    edges = sorted(
        [(datetime.fromisoformat(t["startedAt"]), 1) for t in tasks]
        + [(datetime.fromisoformat(t["completedAt"]), -1) for t in tasks],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


async def test_a_key_runs_at_most_its_limit_across_workers(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    queue = f"ck-{uuid.uuid4().hex[:8]}"
    # two workers of four slots each: eight slots for ten tasks
    spawn_worker(f"{queue}-a", queue, 4)
    spawn_worker(f"{queue}-b", queue, 4)
    # six tasks of customer 1 (at most two at a time), then two of customer 2
    first = await submitted(admin, [keyed(queue, "customer-1", 2, 500) for _ in range(6)])
    second = await submitted(admin, [keyed(queue, "customer-2", 2, 500) for _ in range(2)])
    done = [
        await wait_for_status(admin, i, {"COMPLETED", "FAILED"}, timeout=30)
        for i in [*first, *second]
    ]
    assert {t["status"] for t in done} == {"COMPLETED"}
    ones, twos = done[:6], done[6:]
    assert ones[0]["concurrencyKey"] == "customer-1" and ones[0]["concurrencyLimit"] == 2
    # customer 1 never ran more than two at once, and did run two at once
    assert most_at_once(ones) == 2
    # each ran once: waiting for the key cost no attempt and no hand-back
    assert all(t["attempts"] == 1 for t in done)
    assert all(
        [x["toStatus"] for x in t["transitions"]] == ["QUEUED", "RUNNING", "COMPLETED"]
        for t in done
    )
    # customer 2 waited for nobody: both started before customer 1's last one
    last_of_one = max(datetime.fromisoformat(t["startedAt"]) for t in ones)
    assert all(datetime.fromisoformat(t["startedAt"]) < last_of_one for t in twos)
    assert most_at_once(twos) == 2


async def test_the_same_key_of_two_tenants_is_two_keys_and_bad_limits_are_refused(
    admin: GraphQLClient,
    client_for: Callable[..., GraphQLClient],
    spawn_worker: Callable[..., Proc],
) -> None:
    queue = f"ck-{uuid.uuid4().hex[:8]}"
    spawn_worker(f"{queue}-a", queue, 4)
    alice, bob = client_for("tenant_admin", "alice"), client_for("tenant_admin", "bob")
    ids = await submitted(alice, [keyed(queue, "shared", 1, 600)])
    ids += await submitted(bob, [keyed(queue, "shared", 1, 600)])
    done = [await wait_for_status(admin, i, {"COMPLETED"}, timeout=30) for i in ids]
    # a limit of one each, yet both ran together: each tenant's "shared" is its own
    assert most_at_once(done) == 2
    for bad, field in (
        ({"concurrencyKey": "k"}, "concurrencyLimit"),
        ({"concurrencyLimit": 2}, "concurrencyKey"),
        ({"concurrencyKey": "k", "concurrencyLimit": 0}, "concurrencyLimit"),
        ({"concurrencyKey": "k", "concurrencyLimit": 1001}, "concurrencyLimit"),
    ):
        refused = (await admin.data("SubmitTask", input={"taskType": "echo", **bad}))["submitTask"]
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [(field, "INVALID")]


async def test_a_crashed_workers_hold_is_given_back(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc]
) -> None:
    queue = f"ck-{uuid.uuid4().hex[:8]}"
    doomed = spawn_worker(f"{queue}-doomed", queue, 4)
    [held] = await submitted(admin, [keyed(queue, "only-one", 1, 3000)])
    await wait_for_status(admin, held, {"RUNNING"})
    [waiting] = await submitted(admin, [keyed(queue, "only-one", 1, 100)])
    # when the worker holding the key dies mid-task, another serves the queue
    doomed.kill()
    spawn_worker(f"{queue}-rescuer", queue, 4)
    # both complete on the rescuer (the dead worker's lease on the key was given back with
    # its job, not after arq's in-progress timeout), one at a time
    done = [await wait_for_status(admin, i, {"COMPLETED"}, timeout=40) for i in (held, waiting)]
    assert {t["workerName"] for t in done} == {f"{queue}-rescuer"}
    assert done[0]["isResumed"] is True
    assert most_at_once(done) == 1


PER_CUSTOMER = """
import asyncio

import opsgraph
from pydantic import BaseModel


class Sync(BaseModel):
    customer_id: str
    n: int = 0


@opsgraph.task(
    "crm.sync",
    queue="{queue}",
    input=Sync,
    concurrency=opsgraph.Concurrency(key="customer_id", limit=1),
)
async def sync(ctx: opsgraph.TaskContext, args: Sync) -> dict:
    await asyncio.sleep(0.3)
    return {{"customer": args.customer_id, "n": args.n}}
"""


async def test_a_type_declares_its_key_read_from_the_input(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], tmp_path: Path
) -> None:
    queue = f"ck-{uuid.uuid4().hex[:8]}"
    (tmp_path / "crm.py").write_text(PER_CUSTOMER.format(queue=queue))
    spawn_worker(f"{queue}-a", "", 4, args=["--app", "crm", "--app-dir", str(tmp_path)])
    crm = (await types_served(admin, "crm.sync"))["crm.sync"]
    assert crm["concurrency"] == {"key": "customer_id", "limit": 1}
    items = [
        {"taskType": "crm.sync", "input": {"customer_id": c, "n": n}}
        for n in range(3)
        for c in ("acme", "globex")
    ]
    ids = await submitted(admin, items)
    done = [await wait_for_status(admin, i, {"COMPLETED", "FAILED"}, timeout=30) for i in ids]
    assert {t["status"] for t in done} == {"COMPLETED"}
    acme = [t for t in done if t["input"]["customer_id"] == "acme"]
    assert {t["concurrencyKey"] for t in acme} == {"crm.sync:acme"}
    assert {t["concurrencyLimit"] for t in acme} == {1}
    # one at a time per customer, two customers side by side
    assert most_at_once(acme) == 1
    assert most_at_once(done) == 2
    # an input without the key's field is refused naming it
    refused = (await admin.data("SubmitTask", input={"taskType": "crm.sync", "input": {}}))[
        "submitTask"
    ]
    assert [e["field"] for e in refused["errors"]] == ["input.customer_id"]


CRAWLER = """
import opsgraph


@opsgraph.task("crawl.page", queue="{queue}", rate_limit="4/s", rate_key="input.domain")
async def crawl(ctx: opsgraph.TaskContext, args: dict) -> dict:
    return {{"domain": args["domain"]}}
"""


def most_starts_within(tasks: list[dict[str, Any]], seconds: float) -> int:
    """The most of these tasks that started within any window of `seconds`."""
    starts = sorted(datetime.fromisoformat(t["startedAt"]) for t in tasks)
    return max(
        sum(1 for s in starts[i:] if (s - first).total_seconds() < seconds)
        for i, first in enumerate(starts)
    )


async def test_a_rate_limited_type_starts_at_most_its_rate_per_key(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], tmp_path: Path
) -> None:
    queue = f"rl-{uuid.uuid4().hex[:8]}"
    (tmp_path / "crawler.py").write_text(CRAWLER.format(queue=queue))
    for n in range(2):
        spawn_worker(f"{queue}-{n}", "", 8, args=["--app", "crawler", "--app-dir", str(tmp_path)])
    crawl = (await types_served(admin, "crawl.page"))["crawl.page"]
    assert crawl["rate"] == {"limit": "4/s", "key": "input.domain"}
    # twelve pages of one domain, four of another, on sixteen slots
    items = [{"taskType": "crawl.page", "input": {"domain": "a.example"}} for _ in range(12)]
    items += [{"taskType": "crawl.page", "input": {"domain": "b.example"}} for _ in range(4)]
    ids = await submitted(admin, items)
    done = [await wait_for_status(admin, i, {"COMPLETED", "FAILED"}, timeout=30) for i in ids]
    assert {t["status"] for t in done} == {"COMPLETED"}
    a, b = done[:12], done[12:]
    assert {(t["rateKey"], t["rateLimit"]) for t in a} == {("crawl.page:a.example", "4/s")}
    # never more than four of a.example's starts in any second, measured by startedAt (the
    # database's time, a few ms to a loaded machine's tenths after the claim on Redis's clock:
    # windows of 0.8 s, and one more start as the slack): twelve took three windows
    assert most_starts_within(a, 0.8) <= 4 + 1
    first, last = (
        min(datetime.fromisoformat(t["startedAt"]) for t in a),
        max(datetime.fromisoformat(t["startedAt"]) for t in a),
    )
    assert (last - first).total_seconds() >= 2.0
    # b.example has its own window: its four started without waiting for a.example's
    b_starts = [datetime.fromisoformat(t["startedAt"]) for t in b]
    assert max(b_starts) - min(b_starts) < (last - first)
    assert all(t["attempts"] == 1 for t in done)
