"""`opsgraph dev` on a machine without PostgreSQL or Redis: embedded servers, the API and a
worker come up, the banner's console link (a one-time code) signs in once, a task completes,
two stacks run side by side without colliding, and SIGINT stops everything, embedded servers
included."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import psutil

from tests.client import credentials
from tests.processes import start_dev, stop_dev, wait_banner
from tests.waiting import wait_for_blocking


def processes_under(folder: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(folder) in " ".join(p.info["cmdline"] or [])
    ]


ROOT = Path(__file__).resolve().parents[1]
SUBMIT = "mutation {{ submitTask(input: {input}) {{ task {{ id }} errors {{ message }} }} }}"
# what each stack submits: stack one opsgraph's echo, stack two README's own task type
TASKS = (
    '{taskType: "echo", queue: "default", config: {value: 7}}',
    '{taskType: "images.resize", input: {url: "https://example.com/a.png"}}',
)


def readme_task_module() -> str:
    """README's "Your own task in five minutes" file, as a newcomer copies it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Your own task in five minutes", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_two_dev_stacks_run_side_by_side_and_stop_cleanly(tmp_path: Path) -> None:
    # stack two runs where a newcomer wrote README's mytasks.py: `opsgraph dev --app mytasks`
    project = tmp_path / "project"
    project.mkdir()
    (project / "mytasks.py").write_text(readme_task_module())
    stacks = [
        start_dev(tmp_path / "one"),
        start_dev(tmp_path / "two", "--app", "mytasks", cwd=project),
    ]
    try:
        for (dev, port, log), task in zip(stacks, TASKS, strict=True):
            output = wait_banner(dev, log)
            assert "SIMULATED" in output and f"http://127.0.0.1:{port}/graphql" in output
            token = re.search(r"admin token (\S+)", output)
            assert token, output
            # the console's link carries a one-time code, never the token (a URL lands in the
            # browser's history); the code gives the same token, once
            link = re.search(rf"console +http://127\.0\.0\.1:{port}/console#code=(\S+)", output)
            assert link and token.group(1) not in link.group(0), output
            url = f"http://127.0.0.1:{port}/console/session"
            exchanged = httpx.post(url, json={"code": link.group(1)})
            assert exchanged.status_code == 200 and exchanged.json() == {"token": token.group(1)}
            assert httpx.post(url, json={"code": link.group(1)}).status_code == 400
            names = " ".join(
                " ".join(p.cmdline()) for p in psutil.Process(dev.pid).children(recursive=True)
            )
            assert "serve" in names and "worker" in names
            assert processes_under(log.parent), "embedded servers run from the data folder"

            headers = credentials(token.group(1))
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
                # (a worker registers its types as it starts: wait for them)
                submitted = wait_for_blocking(
                    lambda http=http, task=task: http.post(
                        "/graphql", json={"query": SUBMIT.format(input=task)}
                    ).json(),
                    until=lambda body: not body["data"]["submitTask"]["errors"],
                    what="the task to be accepted",
                    timeout=30,
                )
                task_id = submitted["data"]["submitTask"]["task"]["id"]
                task_url = f"/api/v1/monitoring/tasks/{task_id}"
                wait_for_blocking(
                    lambda http=http, url=task_url: http.get(url).json()["status"],
                    until=lambda status: status == "COMPLETED",
                    what=f"task {task_id} to complete",
                    timeout=10,
                )
                # each stack sees only its own task: separate stores
                assert http.get("/api/v1/monitoring/tasks").json()["total"] == 1
    finally:
        # every stack is stopped, even when stopping another one fails
        failures = []
        for dev, _, _ in stacks:
            try:
                stop_dev(dev)
            except (OSError, subprocess.TimeoutExpired) as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
    # everything they started is gone, the embedded PostgreSQL and Redis included
    wait_for_blocking(
        lambda: [p.info["cmdline"] for p in processes_under(tmp_path)],
        until=lambda leftovers: not leftovers,
        what="every process the stacks started to exit",
        timeout=10,
    )
