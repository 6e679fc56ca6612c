"""Real API and worker processes for end-to-end tests, on free ports, with their logs kept.

Each is forked by the session's fork server (tests/forkserver.py), which imported opsgraph
once, behind a trampoline the test holds as its child process: a start costs a fork, not a
fresh import of the app. OPSGRAPH_TEST_FORKSERVER=0 starts each the plain way instead."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from app.platform.embedded import free_port


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    log: Path
    name: str

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def pid(self) -> int:
        """The opsgraph process's own pid (behind a trampoline, its fork's)."""
        pid_file = self.log.with_suffix(".pid")
        deadline = time.monotonic() + 10
        while not pid_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                return self.process.pid  # not behind a trampoline (or it never forked)
            time.sleep(0.01)
        return int(pid_file.read_text())

    def freeze(self) -> None:
        """SIGSTOP the process itself (a trampoline cannot relay what it cannot catch)."""
        os.kill(self.pid, signal.SIGSTOP)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


TRAMPOLINE = Path(__file__).with_name("trampoline.py")


@dataclass
class ForkServer:
    process: subprocess.Popen[bytes]
    path: Path
    log: Path

    def ready(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the fork server exited:\n" + self.log.read_text())
            if self.path.exists():
                return str(self.path)
            time.sleep(0.02)
        raise RuntimeError("the fork server did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.path.parent, ignore_errors=True)


_fork_server: ForkServer | None = None


def trampoline(socket_path: str, pid_file: Path) -> list[str]:
    return [sys.executable, "-I", "-S", str(TRAMPOLINE), socket_path, str(pid_file)]


def fork_server() -> ForkServer | None:
    """This process's fork server, started on first use (None when switched off). It imports
    the code this process would (same folder, same PYTHONPATH); under the mutation run it is
    itself a fork of the run's library server (OPSGRAPH_TEST_LIBRARY_SERVER)."""
    global _fork_server
    if os.environ.get("OPSGRAPH_TEST_FORKSERVER", "1") == "0":
        return None
    if _fork_server is None or _fork_server.process.poll() is not None:
        # a short folder: a unix socket's path has a limit of about 100 characters
        folder = Path(tempfile.mkdtemp(prefix="opsgraph-fork-"))
        log = folder / "forkserver.log"
        libraries = os.environ.get("OPSGRAPH_TEST_LIBRARY_SERVER")
        if libraries:
            start = [*trampoline(libraries, folder / "pid"), "tests.forkserver"]
        else:
            start = [sys.executable, "-m", "tests.forkserver"]
        process = subprocess.Popen(
            [*start, str(folder / "s")],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _fork_server = ForkServer(process, folder / "s", log)
        atexit.register(_fork_server.stop)
    return _fork_server


def _spawn(args: list[str], env: Mapping[str, str], log: Path, name: str) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("wb")
    server = fork_server()
    if server is None:
        command = [sys.executable, "-m", "app.cli", *args]
    else:
        pid_file = log.with_suffix(".pid")
        pid_file.unlink(missing_ok=True)
        command = [*trampoline(server.ready(), pid_file), "app.cli", *args]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    return Proc(process=process, log=log, name=name)


def spawn_server(env: Mapping[str, str], logs: Path) -> tuple[Proc, str]:
    """Start an API process without waiting for it to be ready."""
    port = free_port()
    proc = _spawn(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env,
        logs / f"server-{port}.log",
        f"server-{port}",
    )
    return proc, f"http://127.0.0.1:{port}"


def start_server(env: Mapping[str, str], logs: Path) -> tuple[Proc, str]:
    proc, base = spawn_server(env, logs)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError("server exited:\n" + proc.output())
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready:\n" + proc.output())


def start_worker(
    env: Mapping[str, str],
    logs: Path,
    *,
    name: str,
    queues: str = "",
    concurrency: int = 8,
    extra_args: Sequence[str] = (),
) -> Proc:
    args = ["worker", "--concurrency", str(concurrency), *extra_args]
    if queues:
        args += ["--queues", queues]
    proc = _spawn(args, {**env, "OPSGRAPH_WORKER_NAME": name}, logs / f"{name}.log", name)
    client = redis.Redis.from_url(env["OPSGRAPH_REDIS_URL"])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if proc.process.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n" + proc.output())
            if client.exists(f"opsgraph:worker:{name}"):
                return proc
            time.sleep(0.1)
    finally:
        client.close()
    proc.kill()
    raise RuntimeError(f"worker {name} did not start:\n" + proc.output())


# --- `opsgraph dev` as a user starts it (embedded stores, its own data folder) ----------------


def start_dev(
    folder: Path, *args: str, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSGRAPH_")}
    folder.mkdir(parents=True)
    log = folder / "dev.log"
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(folder / "data"),
            *args,
        ],
        env=env,
        cwd=cwd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return dev, port, log


def wait_banner(dev: subprocess.Popen[bytes], log: Path) -> str:
    output = ""
    deadline = time.monotonic() + 90
    while "admin token" not in output and time.monotonic() < deadline:
        if dev.poll() is not None:  # it exited: say why (its log, read now)
            raise AssertionError(
                f"opsgraph dev exited ({dev.returncode}):\n" + log.read_text(errors="replace")
            )
        time.sleep(0.2)
        output = log.read_text(errors="replace")
    assert "admin token" in output, output
    return output


def stop_dev(dev: subprocess.Popen[bytes]) -> None:
    if dev.poll() is not None:
        return  # exited already (a failed start): nothing to stop
    os.killpg(dev.pid, signal.SIGINT)
    try:
        dev.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(dev.pid, signal.SIGKILL)
        raise
