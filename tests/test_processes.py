"""The test harness's processes: what the fork server starts behaves as a process started the
plain way (its own environment, its exit status, killed when its handle is killed)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.processes import Proc, fork_server, spawn_server, start_worker
from tests.waiting import wait_for_blocking


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pid: int) -> bool:
    wait_for_blocking(lambda: not running(pid), what=f"process {pid} to be gone", every=0.02)
    return True


@pytest.mark.skipif(fork_server() is None, reason="OPSGRAPH_TEST_FORKSERVER=0")
def test_a_forked_worker_has_its_own_environment_and_dies_with_its_handle(
    env: dict[str, str], logs: Path, spawn_worker: Callable[..., Proc]
) -> None:
    # given a worker started through the fork server with a name of its own (start_worker
    # waits for the heartbeat under that name: the fork read its own environment)
    proc = spawn_worker("worker-forked", "forkq")
    real = proc.pid
    assert real != proc.process.pid  # behind a trampoline
    assert psutil.Process(real).ppid() != os.getpid()
    # when its handle is killed outright
    proc.kill()
    # then the worker itself is gone too, and the handle says it was killed
    assert gone(real)
    assert proc.process.returncode == -signal.SIGKILL


@pytest.mark.skipif(fork_server() is None, reason="OPSGRAPH_TEST_FORKSERVER=0")
def test_a_forked_worker_stops_on_sigterm_and_its_exit_status_comes_through(
    env: dict[str, str], logs: Path
) -> None:
    proc = start_worker(env, logs, name="worker-graceful", queues="graceq")
    real = proc.pid
    proc.stop()  # SIGTERM, relayed: the worker shuts down as it would
    assert proc.process.returncode == 0, proc.output()
    assert gone(real)
    # a process that cannot start says why and exits 1, as `python -m app.cli` would
    bad, _ = spawn_server({**env, "OPSGRAPH_WEBHOOK_SECRET": ""}, logs)
    assert bad.process.wait(timeout=30) == 1
    assert "opsgraph cannot start" in bad.output()
    assert "OPSGRAPH_WEBHOOK_SECRET is empty" in bad.output()
