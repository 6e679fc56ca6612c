"""Real API and worker processes for end-to-end tests, on free ports, with their logs kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
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

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _spawn(args: list[str], env: Mapping[str, str], log: Path, name: str) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
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
    env: Mapping[str, str], logs: Path, *, name: str, queues: str = "", concurrency: int = 8
) -> Proc:
    args = ["worker", "--concurrency", str(concurrency)]
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


def start_dev(folder: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
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
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return dev, port, log


def wait_banner(dev: subprocess.Popen[bytes], log: Path) -> str:
    output = ""
    deadline = time.monotonic() + 90
    while "admin token" not in output and time.monotonic() < deadline:
        assert dev.poll() is None, output
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
