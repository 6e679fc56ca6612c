"""`opsgraph dev` on a machine without PostgreSQL or Redis: embedded servers, the API and a
worker come up, a task completes, and SIGINT stops everything, embedded servers included."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from app.embedded import free_port


def test_dev_stack_runs_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGRAPH_")}
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = ""
    try:
        deadline = time.monotonic() + 90
        while "admin token" not in output and time.monotonic() < deadline:
            assert dev.poll() is None, output
            time.sleep(0.2)
            output = (tmp_path / "dev.log").read_text(errors="replace")
        assert "SIMULATED" in output and f"http://127.0.0.1:{port}/graphql" in output, output
        token = re.search(r"admin token (\S+)", output)
        assert token, output
        descendants = psutil.Process(dev.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in descendants)
        assert "serve" in names and "worker" in names
        embedded_pg = [
            p
            for p in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        ]
        assert embedded_pg, "the embedded servers run from the data folder"

        headers = {"Authorization": f"Bearer {token.group(1)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            submitted = http.post(
                "/graphql",
                json={
                    "query": (
                        'mutation { submitTask(input: {taskType: "echo", queue: "default", '
                        "config: {value: 7}}) { task { id } } }"
                    )
                },
            ).json()
            task_id = submitted["data"]["submitTask"]["task"]["id"]
            status = None
            for _ in range(100):
                status = http.get(f"/api/v1/monitoring/tasks/{task_id}").json()["status"]
                if status == "COMPLETED":
                    break
                time.sleep(0.1)
            assert status == "COMPLETED"
    finally:
        os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            raise
    # everything it started is gone, the embedded PostgreSQL and Redis included
    time.sleep(0.5)
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert not leftovers, [p.info["cmdline"] for p in leftovers]
