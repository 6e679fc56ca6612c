"""The test session's fork server: one process that imports opsgraph once, then forks every API
and worker process the session's tests start (tests/processes.py). A start then costs a fork
instead of the seconds Python takes to import the app again, which is most of what a short
test (and each mutant of the mutation run) used to spend.

A test still holds a real child process of its own: the trampoline (tests/trampoline.py) that
asks this server for the fork, hands it its stdin, stdout and stderr, relays the signals it gets
and exits as the fork exits (the same code, or killed by the same signal). When the trampoline
dies without a word (SIGKILL), the server kills its fork at once, so `Proc.kill()` still kills;
a fork dies with its server (PR_SET_PDEATHSIG), and the server with the process that started
it, so nothing a killed session started outlives it.

    python -m tests.forkserver SOCKET_PATH           # a session's: opsgraph imported
    python -m tests.forkserver --libs SOCKET_PATH    # the mutation run's: libraries only

The mutation run keeps one server of the second kind: it has imported the libraries (pytest,
SQLAlchemy, Strawberry, FastAPI...) but no code of this repository, so each mutant's pytest
session, and that session's own fork server, is a fork that imports only the mutant's tree.

Nothing here reads settings or starts a thread or an event loop before forking: each fork
reads its own environment as a fresh process would (no opsgraph module reads the environment
at import; `get_settings`' cache is cleared in the fork all the same)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
import threading
import traceback
from typing import Any

# what `python -m app.cli serve|worker` imports on its way to serving
PRELOAD = (
    "app.cli",
    "app.cli.run",
    "app.main",
    "workers.main",
    "uvicorn",
    "uvicorn.main",
    "uvicorn.config",
    "uvicorn.server",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "uvloop",
)
# what a test session imports besides the repository's code (the mutation run's server)
LIBRARIES = (
    "pytest",
    "_pytest.assertion.rewrite",
    "_pytest.junitxml",
    "_pytest.python",
    # (not pytest-xdist: it keeps sys.path as it was at its import for its workers)
    "pytest_asyncio",
    "pytest_timeout",
    "httpx",
    "redis",
    "redis.asyncio",
    "asyncpg",
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "pydantic",
    "pydantic_settings",
    "fastapi",
    "fastapi.openapi.utils",
    "starlette.applications",
    "strawberry",
    "strawberry.fastapi",
    "strawberry.subscriptions",
    "graphql",
    "arq",
    "arq.connections",
    "arq.worker",
    "jwt",
    "prometheus_client",
    "watchfiles",
    "websockets",
    "alembic",
    "alembic.command",
    "psutil",
    "PIL.Image",
    *PRELOAD[4:],  # uvicorn and uvloop
)
OURS = ("app", "workers", "tests")  # never imported by the --libs server
HEADER = struct.Struct("!I")  # the request's length; the request is JSON {module, argv, env, cwd}
MAX_REQUEST = 1 << 20
PR_SET_PDEATHSIG = 1


def preload(names: tuple[str, ...]) -> None:
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def die_with_parent() -> None:
    """SIGKILL this process when the one that forked it dies (Linux)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def forget_ours(cwd: str, env: dict[str, str]) -> None:
    """In a fork of the --libs server: the repository's code is imported from the request's
    folder and PYTHONPATH (a mutant's tree), never the server's own."""
    for name in list(sys.modules):
        if name.split(".")[0] in OURS:
            del sys.modules[name]
    own = {os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)} - {""}
    theirs = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [cwd, *theirs, *(p for p in sys.path if p and p not in own)]
    importlib.invalidate_caches()


def read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    conn.settimeout(10)
    head, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
    while len(head) < HEADER.size:
        more = conn.recv(HEADER.size - len(head))
        if not more:
            raise ConnectionError("the trampoline left before its request")
        head += more
    (length,) = HEADER.unpack(head)
    if length > MAX_REQUEST or len(fds) != 3:
        raise ValueError("a malformed request")
    body = b""
    while len(body) < length:
        more = conn.recv(length - len(body))
        if not more:
            raise ConnectionError("the trampoline left mid-request")
        body += more
    conn.settimeout(None)
    return json.loads(body), fds


def run_child(
    request: dict[str, Any], fds: list[int], inherited: list[int], libs_only: bool
) -> int:
    """In the fork: become `python -m MODULE ARGV` with the trampoline's stdio, folder and
    environment; returns the exit code."""
    die_with_parent()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    module = request["module"]
    if libs_only:
        os.setsid()  # a session's group of its own: the mutation run kills it whole
        forget_ours(request["cwd"], request["env"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [module, *request["argv"]]
    if "app.config" in sys.modules:
        sys.modules["app.config"].get_settings.cache_clear()
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # what the interpreter would print before exiting 1
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


class Server:
    def __init__(self, path: str, *, libs_only: bool) -> None:
        self.path = path
        self.libs_only = libs_only
        self.parent = os.getppid()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # bound under another name and renamed once listening: the path appears ready
        self.listener.bind(path + ".new")
        self.listener.listen(64)
        os.rename(path + ".new", path)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        self.forks: dict[int, socket.socket] = {}  # pid -> its trampoline's connection
        self.stopping = False

    def inherited(self) -> list[int]:
        """The fds a fork must not keep: the server's own."""
        return [
            self.listener.fileno(),
            self.wake_r,
            self.wake_w,
            self.selector.fileno() if hasattr(self.selector, "fileno") else -1,
            *(c.fileno() for c in self.forks.values() if c.fileno() >= 0),
        ]

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            request, fds = read_request(conn)
        except (OSError, ValueError) as exc:
            print(f"forkserver: refused a request: {exc}", file=sys.stderr, flush=True)
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:  # no fork to be had: the trampoline says so and exits
            print(f"forkserver: fork failed: {exc}", file=sys.stderr, flush=True)
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        if pid == 0:  # the fork: never returns into the server's loop
            code = 1
            try:
                inherited = [*self.inherited(), conn.fileno()]
                code = run_child(request, fds, inherited, self.libs_only)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        self.forks[pid] = conn
        try:
            conn.sendall(f"pid {pid}\n".encode())
        except OSError:  # the trampoline is gone already
            os.kill(pid, signal.SIGKILL)
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def trampoline_left(self, conn: socket.socket, pid: int) -> None:
        with contextlib.suppress(OSError):
            if conn.recv(64):
                return  # trampolines send nothing after their request; ignore it
        # EOF: the trampoline died (SIGKILL) before its fork: the fork goes with it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self.selector.unregister(conn)

    def reap(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.forks.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(OSError):
                conn.sendall(f"exit {status}\n".encode())
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            conn.close()

    def stop(self, *_: Any) -> None:
        self.stopping = True

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop (the wakeup fd)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            while not self.stopping:
                # the session that started us is gone: so are we (checked once a second)
                if os.getppid() != self.parent:
                    break
                for key, _ in self.selector.select(timeout=1):
                    if key.data == "accept":
                        self.accept()
                    elif key.data == "signal":
                        self.reap()
                    else:
                        self.trampoline_left(key.fileobj, key.data)  # type: ignore[arg-type]
        finally:
            for pid in list(self.forks):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def main() -> None:
    libs_only = sys.argv[1] == "--libs"
    path = sys.argv[-1]
    preload(LIBRARIES if libs_only else PRELOAD)
    # a fork of a threaded process inherits locks held by threads it does not have
    assert threading.active_count() == 1, "a preloaded module started a thread"
    server = Server(path, libs_only=libs_only)
    print(f"forkserver: ready on {path}", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
