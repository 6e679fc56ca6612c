"""Task types of a user's own (issue 31): a package written into a temporary folder, loaded by
a real `opsgraph worker` (through `--app`, and through an installed distribution's entry
point), submitted, watched and composed through the API like opsgraph's own types."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.receiver import SlowProvider
from tests.waiting import wait_for

MYTASKS = '''
"""A user's task types, as a user writes them."""
import asyncio
import time

from pydantic import BaseModel

import opsgraph


class Resize(BaseModel):
    url: str
    width: int = 256


@opsgraph.task("images.resize", queue="media", input=Resize, retries=5, timeout=120)
async def resize(ctx: opsgraph.TaskContext, args: Resize) -> dict:
    """Resize an image (pretend)."""
    await ctx.progress(10, "downloading")
    ctx.log("fetched", bytes=1234)
    return {"path": f"/out/{args.width}.png", "attempt": ctx.attempt, "tenant": ctx.tenant_id}


@opsgraph.task("flaky", queue="media", retries=3)
async def flaky(ctx: opsgraph.TaskContext, args: dict) -> dict:
    if ctx.attempt < 3:
        raise ValueError(f"not yet ({ctx.attempt})")
    return {"ok": ctx.attempt}


@opsgraph.task("doomed", queue="media")
def doomed(ctx: opsgraph.TaskContext, args: dict) -> dict:
    raise opsgraph.FatalError("the input can never work")


@opsgraph.task("sleepy", queue="media", retries=0, timeout=0.5)
async def sleepy(ctx: opsgraph.TaskContext, args: dict) -> None:
    await asyncio.sleep(30)


@opsgraph.task("patient", queue="media")
async def patient(ctx: opsgraph.TaskContext, args: dict) -> dict:
    await ctx.progress(1, "waiting to be cancelled")
    while not ctx.cancelled:
        await asyncio.sleep(0.05)
    return {"stopped": True}


@opsgraph.task("huge", queue="media", retries=3)
def huge(ctx: opsgraph.TaskContext, args: dict) -> str:
    return "x" * 2_000_000


@opsgraph.task("double", queue="media")
def double(ctx: opsgraph.TaskContext, args: dict) -> int:
    return args["n"] * 2


@opsgraph.task("fan_out", queue="media")
async def fan_out(ctx: opsgraph.TaskContext, args: dict) -> dict:
    ids = [await ctx.submit("double", {"n": n}) for n in args["numbers"]]
    results = await ctx.wait(ids)
    return {"sum": sum(results), "children": ids}


@opsgraph.task("fan_out_fails", queue="media", retries=0)
async def fan_out_fails(ctx: opsgraph.TaskContext, args: dict) -> dict:
    ids = [await ctx.submit("doomed", {})]
    return {"never": await ctx.wait(ids)}


@opsgraph.task("asker", queue="askers")
async def asker(ctx: opsgraph.TaskContext, args: dict) -> dict:
    reply = await ctx.llm.chat([{"role": "user", "content": args["prompt"]}])
    return {"content": reply["content"]}
'''


def write_package(folder: Path, module: str = "mytasks", source: str = MYTASKS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    return folder


async def submit(client: GraphQLClient, **item: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await client.data("SubmitTask", input=item))["submitTask"]
    return payload


async def types_served(client: GraphQLClient, *names: str) -> dict[str, dict[str, Any]]:
    """taskTypes, once every one of `names` is served by a live worker."""

    async def read() -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in (await client.data("TaskTypes"))["taskTypes"]}

    return await wait_for(
        read,
        until=lambda got: all(got.get(n, {}).get("serving") for n in names),
        what=f"task types {names} served",
        timeout=30,
    )


@pytest.fixture
def app_folder(tmp_path: Path) -> Path:
    return write_package(tmp_path / "project")


@pytest.fixture
def app_worker(spawn_worker: Callable[..., Proc], app_folder: Path) -> Callable[..., Proc]:
    def start(name: str = "worker-mytasks", **env: str) -> Proc:
        return spawn_worker(
            name, "", 4, args=["--app", "mytasks", "--app-dir", str(app_folder)], **env
        )

    return start


async def test_a_users_type_runs_end_to_end(
    admin: GraphQLClient, app_worker: Callable[..., Proc]
) -> None:
    # given a worker that loaded the user's module through --app
    app_worker()
    types = await types_served(admin, "images.resize")
    resize = types["images.resize"]
    assert resize["builtin"] is False and resize["queue"] == "media"
    assert resize["retries"] == 5 and resize["timeout"] == 120.0
    assert resize["description"] == "Resize an image (pretend)."
    assert resize["inputSchema"]["required"] == ["url"]
    assert resize["workersServing"] == 1 and len(resize["definitions"]) == 1
    assert types["llm"]["builtin"] is True

    # when it is submitted through GraphQL, naming no queue
    payload = await submit(admin, taskType="images.resize", input={"url": "http://x/a.png"})
    assert payload["errors"] == []
    task = payload["task"]
    assert task["queue"] == "media" and task["maxAttempts"] == 6

    # then it completes with its result, its progress and its log line
    done = await wait_for_status(admin, task["id"], {"COMPLETED"})
    assert done["result"] == {"path": "/out/256.png", "attempt": 1, "tenant": None}
    assert done["workerName"] == "worker-mytasks"
    assert [(p["progress"], p["message"]) for p in done["progressHistory"]] == [
        (10.0, "downloading"),
        (100.0, "completed"),
    ]
    assert [(line["message"], line["fields"]) for line in done["logs"]] == [
        ("fetched", {"bytes": 1234})
    ]
    # and its figures: the type's tasks by status
    counted = await types_served(admin, "images.resize")
    assert counted["images.resize"]["counts"] == [{"status": "COMPLETED", "count": 1}]

    # and through REST's bulk submission too, with seed 001's view of it
    rest = await admin.http.post(
        "/api/v1/tasks/batch",
        json={"tasks": [{"task_type": "images.resize", "input": {"url": "u", "width": 8}}]},
    )
    assert rest.status_code == 202, rest.text
    [rest_id] = rest.json()["task_ids"]
    done = await wait_for_status(admin, rest_id, {"COMPLETED"})
    assert done["result"]["path"] == "/out/8.png"
    detail = (await admin.http.get(f"/api/v1/monitoring/tasks/{rest_id}")).json()
    # a user's type keeps its name in seed 001's words (opsgraph's own are in capitals)
    assert detail["task_type"] == "images.resize" and detail["status"] == "COMPLETED"
    listed = await admin.http.get("/api/v1/monitoring/tasks", params={"task_type": "images.resize"})
    assert [t["id"] for t in listed.json()["items"]] == [rest_id, task["id"]]
    figures = (await admin.http.get("/api/v1/monitoring/stats")).json()
    assert figures["by_task_type"] == {"images.resize": 2}


async def test_input_is_validated_in_the_api_naming_the_field(
    admin: GraphQLClient, app_worker: Callable[..., Proc]
) -> None:
    app_worker()
    await types_served(admin, "images.resize")
    missing = await admin.execute(
        "SubmitTask", input={"taskType": "images.resize", "input": {"width": 3}}
    )
    assert [(e["field"], e["code"]) for e in missing["data"]["submitTask"]["errors"]] == [
        ("input.url", "INVALID")
    ]
    wrong = await admin.execute(
        "SubmitTask", input={"taskType": "images.resize", "input": {"url": "u", "width": "wide"}}
    )
    assert [(e["field"], e["message"]) for e in wrong["data"]["submitTask"]["errors"]] == [
        ("input.width", "images.resize: input.width must be integer")
    ]
    unknown = await admin.execute("SubmitTask", input={"taskType": "images.crop", "input": {}})
    errors = unknown["data"]["submitTask"]["errors"]
    assert [e["field"] for e in errors] == ["taskType"]
    error = errors[0]
    assert "unknown task type 'images.crop'" in error["message"]
    assert "images.resize" in error["message"] and "llm" in error["message"]
    # REST names the field in seed 001's 422 shape
    rest = await admin.http.post(
        "/api/v1/tasks/batch", json={"tasks": [{"task_type": "images.resize", "input": {}}]}
    )
    assert rest.status_code == 422
    assert "input.url" in str(rest.json()["detail"])
    # and nothing was written
    listing = (await admin.http.get("/api/v1/monitoring/tasks")).json()
    assert listing["total"] == 0


async def test_retries_fatal_errors_timeouts_and_result_bounds(
    admin: GraphQLClient, app_worker: Callable[..., Proc]
) -> None:
    app_worker(OPSGRAPH_RETRY_BASE_DELAY_SECONDS="0.05", OPSGRAPH_RETRY_JITTER="0")
    await types_served(admin, "flaky")
    flaky = (await submit(admin, taskType="flaky"))["task"]["id"]
    doomed = (await submit(admin, taskType="doomed"))["task"]["id"]
    sleepy = (await submit(admin, taskType="sleepy"))["task"]["id"]
    huge = (await submit(admin, taskType="huge"))["task"]["id"]

    # a handler that fails twice: 3 attempts, each failure kept with its message, and its
    # traceback in the task's logs
    done = await wait_for_status(admin, flaky, {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED" and done["result"] == {"ok": 3}
    assert done["attempts"] == 3
    assert done["errors"] == [
        "attempt 1: ValueError: not yet (1)",
        "attempt 2: ValueError: not yet (2)",
    ]
    tracebacks = [line for line in done["logs"] if line["message"] == "handler raised ValueError"]
    assert len(tracebacks) == 2
    assert "raise ValueError" in tracebacks[0]["fields"]["traceback"]

    # FatalError (from a plain def, run in a thread): FAILED at once, dead-lettered
    done = await wait_for_status(admin, doomed, {"FAILED"})
    assert done["attempts"] == 1 and done["deadLettered"] is True
    assert done["errors"] == ["attempt 1: the input can never work"]

    # the type's own timeout (0.5 s, no retries) follows the policy
    done = await wait_for_status(admin, sleepy, {"FAILED"})
    assert done["errors"] == ["attempt 1: attempt timed out"] and done["attempts"] == 1

    # a result over OPSGRAPH_MAX_RESULT_BYTES fails fatally (no retry) and stores nothing
    done = await wait_for_status(admin, huge, {"FAILED"})
    assert done["attempts"] == 1 and done["result"] is None
    assert done["errors"] == [
        "attempt 1: the result is 2000002 bytes; the limit is 1048576 (OPSGRAPH_MAX_RESULT_BYTES)"
    ]


async def test_cancel_reaches_a_handler_that_watches_for_it(
    admin: GraphQLClient, app_worker: Callable[..., Proc]
) -> None:
    app_worker(OPSGRAPH_CANCEL_GRACE_SECONDS="30")
    await types_served(admin, "patient")
    task_id = (await submit(admin, taskType="patient"))["task"]["id"]
    await wait_for(
        lambda: admin.data("Task", id=task_id),
        until=lambda d: d["task"]["progress"] == 1.0,
        what="the handler to start",
    )
    started = time.monotonic()
    cancelled = await admin.data("CancelTask", id=task_id)
    assert cancelled["cancelTask"]["errors"] == []
    done = await wait_for_status(admin, task_id, {"CANCELLED", "COMPLETED"}, timeout=5)
    # well within the 30 s grace: the handler stopped on its own when it saw ctx.cancelled
    assert done["status"] == "CANCELLED" and time.monotonic() - started < 2
    assert done["result"] is None


async def test_child_tasks_and_waiting_for_them(
    admin: GraphQLClient, app_worker: Callable[..., Proc]
) -> None:
    app_worker()
    await types_served(admin, "fan_out")
    parent = (await submit(admin, taskType="fan_out", input={"numbers": [1, 2, 3]}))["task"]
    done = await wait_for_status(admin, parent["id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED" and done["result"]["sum"] == 12
    children = done["children"]
    assert [c["id"] for c in children] == done["result"]["children"]
    assert [(c["taskType"], c["status"], c["result"]) for c in children] == [
        ("double", "COMPLETED", 2),
        ("double", "COMPLETED", 4),
        ("double", "COMPLETED", 6),
    ]
    child = (await admin.data("Task", id=children[0]["id"]))["task"]
    assert child["parent"] == {"id": parent["id"], "taskType": "fan_out"}

    # a child that fails makes ctx.wait raise: the parent fails naming it
    failing = (await submit(admin, taskType="fan_out_fails"))["task"]["id"]
    done = await wait_for_status(admin, failing, {"COMPLETED", "FAILED"})
    [child] = done["children"]
    assert done["status"] == "FAILED"
    assert done["errors"] == [
        f"attempt 1: task {child['id']} FAILED: attempt 1: the input can never work"
    ]


@pytest.fixture
async def provider() -> AsyncIterator[SlowProvider]:
    async with SlowProvider(hold=0.3) as slow:
        yield slow


async def test_llm_calls_take_a_slot_and_are_counted_on_the_task(
    admin: GraphQLClient, app_worker: Callable[..., Proc], provider: SlowProvider
) -> None:
    # given one LLM slot for the installation and three tasks that each call the LLM
    app_worker(
        OPSGRAPH_LLM_BASE_URL=provider.url + "/v1",
        OPSGRAPH_LLM_MAX_CONCURRENT="1",
        OPSGRAPH_LLM_RESERVED_HIGH_PRIORITY="0",
        OPSGRAPH_LLM_CHAT_MODEL="gpt-4o-mini",
    )
    await types_served(admin, "asker")
    ids = [
        (await submit(admin, taskType="asker", input={"prompt": f"q{i}"}))["task"]["id"]
        for i in range(3)
    ]
    done = [await wait_for_status(admin, t, {"COMPLETED", "FAILED"}) for t in ids]
    # then every call ran alone, and each task carries its call's tokens and cost
    assert [d["status"] for d in done] == ["COMPLETED"] * 3
    assert provider.peak["all"] == 1 and len(provider.received) == 3
    assert [d["result"]["content"] for d in done] == ["q0", "q1", "q2"]
    for d in done:
        assert (d["inputTokens"], d["outputTokens"], d["model"]) == (3, 2, "gpt-4o-mini")
        assert d["costUsd"] == pytest.approx((3 * 0.15 + 2 * 0.6) / 1_000_000)


async def test_a_worker_without_the_handler_hands_the_task_back(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], app_worker: Callable[..., Proc]
) -> None:
    # given a registered type, and a worker on its queue that has no handler for it
    first = app_worker("worker-mytasks-first")
    await types_served(admin, "images.resize")
    first.stop()
    spawn_worker("worker-plain", "media", 4)
    task_id = (await submit(admin, taskType="images.resize", input={"url": "u"}))["task"]["id"]
    # when the plain worker takes the job, it hands it back, no attempt counted
    waiting = await wait_for(
        lambda: admin.data("Task", id=task_id),
        until=lambda d: bool(d["task"]["logs"]),
        what="the hand-back to be noted",
    )
    task = waiting["task"]
    assert task["status"] == "QUEUED" and task["attempts"] == 0
    assert task["logs"][0]["message"] == (
        "worker worker-plain has no handler for 'images.resize': waiting for a worker that "
        "serves it"
    )
    # then a worker that has the handler runs it: one attempt
    app_worker("worker-mytasks-second")
    done = await wait_for_status(admin, task_id, {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED" and done["attempts"] == 1
    assert done["workerName"] == "worker-mytasks-second"


def run_worker_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_module_that_fails_to_import_stops_the_worker(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import os

    full = {**os.environ, **env}
    folder = write_package(tmp_path, "broken", "import opsgraph\nraise RuntimeError('no GPU')\n")
    done = run_worker_command("--app", "broken", "--app-dir", str(folder), env=full)
    assert done.returncode != 0
    assert (
        "opsgraph worker: task module 'broken' (--app) failed to import: RuntimeError: no GPU"
        in done.stderr
    )
    # a package named like opsgraph's own is refused, naming the clash
    done = run_worker_command("--app", "app.tasks", "--app-dir", str(folder), env=full)
    assert done.returncode != 0
    assert "'app' is the name of opsgraph's own package" in done.stderr
    # and a type that takes the name of one of opsgraph's own
    write_package(
        tmp_path,
        "taker",
        "import opsgraph\n@opsgraph.task('llm')\ndef mine(ctx, args):\n    return 1\n",
    )
    done = run_worker_command("--app", "taker", "--app-dir", str(folder), env=full)
    assert done.returncode != 0
    assert "task type 'llm' is opsgraph's own and cannot be redefined" in done.stderr


async def test_an_installed_entry_point_is_loaded(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], tmp_path: Path
) -> None:
    # given a distribution installed into a folder (as `pip install --target` leaves it),
    # declaring its module in the `opsgraph.tasks` entry-point group
    site = tmp_path / "site"
    write_package(
        site / "thumbs",
        "__init__",
        "import opsgraph\n@opsgraph.task('thumbnail', queue='thumbs')\n"
        "async def thumbnail(ctx, args):\n    return {'thumb': args['name']}\n",
    )
    info = site / "thumbs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thumbs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[opsgraph.tasks]\nthumbs = thumbs\n")
    # when a worker starts with that folder on its path, naming no --app
    spawn_worker("worker-thumbs", "", 2, args=["--app-dir", str(site)])
    await types_served(admin, "thumbnail")
    task_id = (await submit(admin, taskType="thumbnail", input={"name": "a"}))["task"]["id"]
    # then it serves the type, on the type's queue it was not told to consume
    done = await wait_for_status(admin, task_id, {"COMPLETED", "FAILED"})
    assert done["result"] == {"thumb": "a"} and done["queue"] == "thumbs"


async def test_workflow_steps_of_a_users_type(
    admin: GraphQLClient, app_worker: Callable[..., Proc]
) -> None:
    app_worker()
    await types_served(admin, "double")
    created = await admin.data(
        "CreateWorkflow",
        input={
            "name": "doubles",
            "steps": [
                {"stepId": "a", "taskType": "double", "input": {"n": 2}},
                {
                    "stepId": "b",
                    "taskType": "double",
                    "dependencies": ["a"],
                    "inputMappings": [{"from_step": "a", "path": "", "to": "n"}],
                },
                {
                    "stepId": "c",
                    "taskType": "images.resize",
                    "dependencies": ["b"],
                    "inputMappings": [{"from_step": "b", "path": "", "to": "width"}],
                },
            ],
        },
    )
    wf = created["createWorkflow"]
    assert wf["errors"] == []
    done = await wait_for(
        lambda: admin.data("Workflow", id=wf["workflow"]["id"]),
        until=lambda d: d["workflow"]["status"] in ("COMPLETED", "FAILED"),
        what="the workflow to finish",
    )
    steps = {s["stepId"]: s for s in done["workflow"]["steps"]}
    assert steps["a"]["result"] == 4 and steps["b"]["result"] == 8
    # the last step's input lacks the type's required url: the step fails naming the field
    assert done["workflow"]["status"] == "FAILED"
    assert steps["c"]["status"] == "FAILED"
    assert steps["c"]["errorMessage"].startswith("input refused (input.url)")
    # an unknown type is refused when the workflow is created
    refused = await admin.data(
        "CreateWorkflow",
        input={"name": "nope", "steps": [{"stepId": "a", "taskType": "images.crop"}]},
    )
    [error] = refused["createWorkflow"]["errors"]
    assert error["field"] == "steps[0].task_type"


RESIZER = """
from pydantic import BaseModel

import opsgraph


class Resize(BaseModel):
    url: str
{extra}

@opsgraph.task("resize", queue="deploy", input=Resize)
async def resize(ctx: opsgraph.TaskContext, args: Resize) -> dict:
    return args.model_dump()
"""


async def test_a_rolling_deploy_shows_both_definitions_and_obeys_the_newest(
    admin: GraphQLClient, spawn_worker: Callable[..., Proc], tmp_path: Path
) -> None:
    # given version 1 of a type served, and a submission it accepts
    old = write_package(tmp_path / "v1", "resizer", RESIZER.format(extra=""))
    new = write_package(tmp_path / "v2", "resizer", RESIZER.format(extra="    height: int"))
    spawn_worker("worker-v1", "", 2, args=["--app", "resizer", "--app-dir", str(old)])
    await types_served(admin, "resize")
    accepted = await submit(admin, taskType="resize", input={"url": "u"})
    assert accepted["errors"] == []
    # when version 2 starts beside it (a rolling deploy)
    spawn_worker("worker-v2", "", 2, args=["--app", "resizer", "--app-dir", str(new)])
    both = await wait_for(
        lambda: types_served(admin, "resize"),
        until=lambda got: len(got["resize"]["definitions"]) == 2,
        what="both definitions registered",
    )
    resize = both["resize"]
    # then both are shown, newest first, and both workers serve the name
    assert resize["workersServing"] == 2
    assert [
        (sorted(d["inputSchema"]["required"]), d["workersServing"]) for d in resize["definitions"]
    ] == [(["height", "url"], 1), (["url"], 1)]
    assert resize["inputSchema"]["required"] == ["url", "height"]
    # and submissions obey the newest at once (the registration tells every API process)
    refused = await wait_for(
        lambda: submit(admin, taskType="resize", input={"url": "u"}),
        until=lambda payload: payload["errors"],
        what="the newest definition to be obeyed",
        timeout=2,
    )
    assert [e["field"] for e in refused["errors"]] == ["input.height"]
