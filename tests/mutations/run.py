"""The mutation run: apply each mutation of the catalog (one line of production code broken the
way a plausible bug would break it) in a temporary copy of the working tree, run there the tests
that must catch it, and report the mutations those tests did not kill. Run it after the suite
passes:

    python -m tests.mutations.run            # every mutation
    python -m tests.mutations.run --fast     # the subset marked fast
    python -m tests.mutations.run --only "JSON of any depth"

The copy holds the working tree as git sees it (tracked and untracked files, less what
.gitignore names), so a developer's uncommitted changes are what is tested and an interrupted
run leaves the tree as it was. First the guarding tests run unmutated in the copy (the
baseline: they must pass there, else the run fails saying so); then the mutants, four at a time,
each in a copy, a database and a Redis database of its own. A mutant counts as killed only when
one of its named tests fails in its own code (a <failure> in the junit XML: by an assertion,
shown as `killed`, or by an exception the test met, shown as `killed (KeyError)`): an error in
setup, a timeout, an import or collection error is reported as what it is, never as a kill.

The stores are the suite's (OPSGRAPH_TEST_DATABASE_URL / OPSGRAPH_TEST_REDIS_URL, or embedded
ones the run starts once for all its sessions). Each session is a fork of one server that has
imported the libraries but none of this repository's code (tests/forkserver.py --libs), and so
is each session's own fork server: a mutant pays for importing its tree, not the libraries.

`--baseline-from JUNIT_XML` takes the baseline from a suite run of the same tree instead of
running the guarding tests again (CI passes the suite's report): every guarding test must have
passed there. The last line printed is one JSON object with
the figures; the exit status is 1 when the baseline failed or a mutation was not killed.

This module is also the pytest plugin (`-p tests.mutations.run`) that records, for each failed
test, whether an assertion failed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.mutations.catalog import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600  # one mutant's pytest, start to end (each test also has pytest-timeout's)
# mutants at a time: each runs an API and a worker process besides its pytest, and mostly
# waits (for processes, workers, timeouts): four keep this 2-core machine busy (measured
# 2026-12-07: 114 mutants in 351 s at four, 490 s at two)
JOBS = 4
VERDICT = "mutation_verdict"  # the junit property this plugin writes on a failed test
STOP_ENV = "OPSGRAPH_MUTANT_STOP_ON_KILL"
IGNORED = {".git", ".venv", ".opsgraph", "__pycache__", ".mypy_cache", ".ruff_cache"}


# --- the plugin: what made a test fail ---------------------------------------------------------


def _verdict(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """What made a test fail in its call: `assertion` (an assert, pytest.fail, pytest.raises'
    DID NOT RAISE), `timeout` (pytest-timeout's), `import: <type>` (code that cannot even be
    imported), else `exception: <type>` (the test's own code met what it did not expect)."""
    value = excinfo.value
    if isinstance(value, pytest.fail.Exception):
        return "timeout" if str(value).startswith("Timeout") else "assertion"
    if isinstance(value, AssertionError):
        return "assertion"
    if isinstance(value, BaseExceptionGroup):
        rest = value.subgroup(lambda e: not isinstance(e, AssertionError | BaseExceptionGroup))
        if rest is None:
            return "assertion"
    if isinstance(value, ImportError):
        return f"import: {type(value).__name__}"
    return f"exception: {type(value).__name__}"


def kills(verdict: str) -> bool:
    """A failure in the test's call kills a mutant; a timeout or an import error does not
    (nor, judged from the junit XML, an error in setup or collection)."""
    return verdict == "assertion" or verdict.startswith("exception: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed and call.excinfo is not None:
        verdict = _verdict(call.excinfo)
        # junitxml writes the properties the teardown report carries: the item's
        item.user_properties.append((VERDICT, verdict))
        if kills(verdict) and os.environ.get(STOP_ENV):
            # the mutant is killed: the rest of its tests cannot change that
            item.session.shouldstop = "a guarding test failed: the mutant is killed"
    return report


# --- the copy of the working tree ----------------------------------------------------------------


def tree_files(root: Path) -> list[str]:
    """The working tree's files as git sees them (tracked and untracked, less the ignored)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        names = sorted({n for n in out.decode().split("\0") if n})
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file
        names = [
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not IGNORED & set(p.relative_to(root).parts)
        ]
    # a tracked file deleted in the working tree is not part of it
    return [n for n in names if (root / n).is_file()]


def copy_tree(root: Path, dest: Path) -> None:
    for name in tree_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target, follow_symlinks=False)


def _forget_bytecode(path: Path) -> None:
    """A rewritten file of the same size in the same second would pass for its old .pyc: drop
    the .pyc, so the next import compiles what is on disk."""
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)


def write_source(path: Path, text: str) -> None:
    path.write_text(text)
    _forget_bytecode(path)


# --- stores the run's sessions share -------------------------------------------------------------


def redis_with_database(url: str, offset: int) -> str:
    from tests.stores import redis_with_database as move

    return move(url, offset)


@dataclass
class SharedStores:
    """Where the run's pytest sessions find PostgreSQL and Redis: the machine's, or embedded
    ones started once here (not once per mutant)."""

    database_url: str
    redis_url: str
    stops: list[Any]

    @classmethod
    def open(cls, tmp: Path) -> SharedStores:
        from app.platform.embedded import start_postgres, start_redis
        from tests.stores import embedded_postgres_dir

        stops: list[Any] = []
        database_url = os.environ.get("OPSGRAPH_TEST_DATABASE_URL", "")
        if not database_url:
            pg = start_postgres(embedded_postgres_dir())
            stops.append(pg.stop)
            database_url = pg.url
        redis_url = os.environ.get("OPSGRAPH_TEST_REDIS_URL", "")
        if not redis_url:
            rd = start_redis(tmp, persist=False)
            stops.append(rd.stop)
            redis_url = rd.url
        return cls(database_url, redis_url, stops)

    def close(self) -> None:
        for stop in reversed(self.stops):
            stop()


def flush_redis(url: str) -> None:
    """A slot's Redis databases (its own and the neighbour a test borrows) start each mutant
    empty: a heartbeat a killed session left would pass for the next session's worker."""
    import redis

    for offset in (0, 1):
        head, _, db = url.partition("?")[0].rpartition("/")
        client = redis.Redis.from_url(f"{head}/{(int(db or 0) + offset) % 16}")
        try:
            client.flushdb()
        finally:
            client.close()


def drop_databases(admin_url: str, prefix: str) -> list[str]:
    from app.config import asyncpg_url
    from tests.stores import drop_databases as drop

    return asyncio.run(drop(asyncpg_url(admin_url), prefix))


# --- running pytest in a copy and reading its junit XML -----------------------------------------


@dataclass
class Slot:
    """A copy of the tree and the Redis database its sessions use; one mutant at a time."""

    index: int
    tree: Path
    redis_url: str
    env: dict[str, str]
    library: LibraryServer | None = None


@dataclass
class Case:
    nodeid: str
    outcome: str  # passed, skipped, or what failed: "assertion", "timeout", "error: ...", ...
    seconds: float = 0.0


@dataclass
class Finished:
    returncode: int | None  # None: killed at TIMEOUT_SECONDS
    cases: list[Case]
    log: Path
    seconds: float


_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()  # the run is ending (or interrupted): start no more sessions


def _kill_group(process: subprocess.Popen[bytes], pid_file: Path | None = None) -> None:
    """pytest and the API, worker and browser processes it started (one process group; behind
    a trampoline, the fork's group too: a fork of the library server leads a group of its
    own)."""
    groups = [process.pid]
    if pid_file is not None and pid_file.exists():
        with contextlib.suppress(ValueError):
            groups.append(int(pid_file.read_text()))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    process.wait()


@dataclass
class LibraryServer:
    """The fork server every session of the run is forked from (tests/forkserver.py --libs)."""

    process: subprocess.Popen[bytes]
    path: Path

    @classmethod
    def start(cls, folder: Path) -> LibraryServer:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "s"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", "--libs", str(path)],
            cwd=ROOT,
            env=env,
            stdout=(folder / "log").open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("the library fork server did not start:\n" + tail(folder / "log"))
            time.sleep(0.05)
        return cls(process, path)

    def command(self, pid_file: Path, module: str, *args: str) -> list[str]:
        from tests.processes import trampoline

        return [*trampoline(str(self.path), pid_file), module, *args]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# pytest plugins a session loads on every start (about 1.5 s of imports), needed only by test
# files that name them
OPTIONAL_PLUGINS = {"schemathesis": "schemathesis", "hypothesispytest": "hypothesis"}


def unused_plugins(tree: Path, tests: Iterable[str]) -> list[str]:
    sources = [
        (tree / t.split("::")[0]).read_text(errors="replace")
        for t in tests
        if (tree / t.split("::")[0]).is_file()
    ]
    return [
        arg
        for plugin, word in OPTIONAL_PLUGINS.items()
        if not any(word in source for source in sources)
        for arg in ("-p", f"no:{plugin}")
    ]


def run_pytest(slot: Slot, tests: list[str], out: Path, *, jobs: int, stop: bool) -> Finished:
    junit, log, pid_file = out.with_suffix(".xml"), out.with_suffix(".log"), out.with_suffix(".pid")
    arguments = [
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.mutations.run",
        *unused_plugins(slot.tree, tests),
        "-n",
        str(jobs if jobs > 1 else 0),
        f"--junitxml={junit}",
        # a folder of its own: a session under /tmp/pytest-of-<user> makes that folder private
        # again when it starts, which can cut off the embedded PostgreSQL's own user in a
        # session already running there (the dev stack tests)
        f"--basetemp={out.with_suffix('.tmp')}",
        # xunit1 names each test's file and keeps the properties this plugin writes
        "-o",
        "junit_family=xunit1",
        *tests,
    ]
    if slot.library is None:
        command = [sys.executable, "-m", "pytest", *arguments]
    else:
        # the plugins' own modules were imported before pytest could rewrite their asserts
        # (the library server's); the tests' modules are imported, and rewritten, as ever
        quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        command = slot.library.command(pid_file, "pytest", *quiet, *arguments)
    env = {**slot.env, STOP_ENV: "1"} if stop else slot.env
    started = time.monotonic()
    with log.open("wb") as handle, _running_lock:
        if _stopping.is_set():
            raise RuntimeError("the mutation run is stopping")
        process = subprocess.Popen(
            command,
            cwd=slot.tree,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _running.add(process)
    try:
        returncode: int | None = process.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        # whatever the outcome, nothing it started outlives it
        _kill_group(process, pid_file)
        with _running_lock:
            _running.discard(process)
    shutil.rmtree(out.with_suffix(".tmp"), ignore_errors=True)
    return Finished(returncode, read_junit(junit), log, time.monotonic() - started)


def read_junit(path: Path) -> list[Case]:
    if not path.exists():
        return []
    cases: list[Case] = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        file, classname, name = tc.get("file", ""), tc.get("classname", ""), tc.get("name", "")
        name = re.sub(r"@\w+$", "", name)  # xdist's loadgroup suffixes a grouped test's id
        module = file.removesuffix(".py").replace("/", ".")
        inner = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
        nodeid = "::".join(p for p in (file or classname, *inner.split("."), name) if p)
        props = {p.get("name"): p.get("value", "") for p in tc.iter("property")}
        failure, error, skipped = tc.find("failure"), tc.find("error"), tc.find("skipped")
        if failure is not None:
            outcome = props.get(VERDICT) or "failed: " + _first_line(failure)
        elif error is not None and error.get("message") == "collection failure":
            outcome = "collection error: " + (error.text or "?").strip().splitlines()[0][:100]
        elif error is not None:
            outcome = "error: " + _first_line(error)
        elif skipped is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        cases.append(Case(nodeid, outcome, float(tc.get("time") or 0)))
    return cases


def _first_line(element: ET.Element) -> str:
    text = (element.get("message") or element.text or "").strip()
    return text.splitlines()[0][:120] if text else "?"


def named(cases: list[Case], test: str) -> list[Case]:
    """The cases a catalog entry's test names: a file, a test (any of its parameters) or, as
    pytest reads node ids, a class."""
    return [
        c
        for c in cases
        if c.nodeid == test or c.nodeid.startswith(test + "[") or c.nodeid.startswith(test + "::")
    ]


def judge(m: Mutation, done: Finished) -> str:
    """`killed` when a named test failed by assertion, `killed (<type>)` when its own code
    failed on an exception; else what happened instead (never counted as a kill)."""
    ours = [c for t in m.tests for c in named(done.cases, t)]
    if any(c.outcome == "assertion" for c in ours):
        return "killed"
    for c in ours:
        if kills(c.outcome):
            return f"killed ({c.outcome.removeprefix('exception: ')})"
    if done.returncode is None:
        return f"TIMEOUT (> {TIMEOUT_SECONDS} s)"
    problems = [c.outcome for c in ours if c.outcome not in ("passed", "skipped")]
    problems += [c.outcome for c in done.cases if c.outcome.startswith("collection error")]
    if problems:
        first = problems[0]
        kind = "TIMEOUT" if first == "timeout" else "NOT KILLED"
        return f"{kind} ({first})"
    if not ours or done.returncode not in (0, 1):
        return f"NOT RUN (pytest exit {done.returncode})"
    if any(c.outcome == "skipped" for c in ours):
        return "NOT KILLED (skipped)"
    return "SURVIVED"


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# --- the run -------------------------------------------------------------------------------------


def guarding_tests(chosen: list[Mutation]) -> list[str]:
    """Each named test once; a test whose whole file is named goes with the file."""
    tests = list(dict.fromkeys(t for m in chosen for t in m.tests))
    files = {t for t in tests if "::" not in t}
    return [t for t in tests if t in files or t.split("::")[0] not in files]


def check_imports(slot: Slot) -> None:
    """The sessions (and the API and worker processes they start) must import the copy's code,
    not the checkout the virtualenv's editable install points at."""
    out_file = slot.tree / ".where"
    if slot.library is None:
        command = [sys.executable, "-m", "tests.mutations.run", "--where", str(out_file)]
    else:
        pid_file = slot.tree / ".where.pid"
        command = slot.library.command(pid_file, "tests.mutations.run", "--where", str(out_file))
    subprocess.run(command, cwd=slot.tree, env=slot.env, check=True)
    out = out_file.read_text().split()
    outside = [p for p in out if not Path(p).resolve().is_relative_to(slot.tree.resolve())]
    if len(out) != 3 or outside:
        raise SystemExit(f"the copy's sessions would import {outside or out}, not the copy's code")


def where(out: str) -> None:
    """`--where FILE`: write where app, workers and tests are imported from."""
    import app
    import tests
    import workers

    Path(out).write_text(" ".join(str(m.__file__) for m in (app, workers, tests)))


def baseline(
    slot: Slot, chosen: list[Mutation], out: Path, jobs: int, report: Path | None = None
) -> tuple[bool, float, dict[str, float]]:
    """Whether every guarding test passes unmutated, how long that took, and each named
    test's seconds (to start the longest mutants first). With `report` (a junit XML of a
    suite run of the same tree), read from it instead of run."""
    if report is not None:
        done = Finished(0, read_junit(report), report, 0.0)
    else:
        tests = guarding_tests(chosen)
        if len(tests) == 1 and "::" in tests[0]:
            jobs = 1  # one test: xdist's workers would cost more than they save
        done = run_pytest(slot, tests, out, jobs=jobs, stop=False)
    bad: list[str] = []
    seconds: dict[str, float] = {}
    for test in dict.fromkeys(t for m in chosen for t in m.tests):
        cases = named(done.cases, test)
        if not cases:
            bad.append(f"{test}: not run")
        bad += [f"{c.nodeid}: {c.outcome}" for c in cases if c.outcome != "passed"]
        seconds[test] = sum(c.seconds for c in cases)
    if done.returncode != 0 or bad:
        print(
            "baseline FAILED: the guarding tests do not pass unmutated"
            f" (pytest exit {done.returncode}); no mutant can be judged:",
            *sorted(set(bad)) or ["(see the output)"],
            tail(done.log),
            sep="\n",
            flush=True,
        )
        return False, done.seconds, seconds
    return True, done.seconds, seconds


def run_mutant(m: Mutation, slot: Slot, out: Path) -> tuple[str, Finished]:
    path = slot.tree / m.file
    original = path.read_text()
    found = original.count(m.old)
    if found != 1:
        raise SystemExit(f"{m.name}: the line occurs {found} times in {m.file}, not once")
    flush_redis(slot.redis_url)
    write_source(path, original.replace(m.old, m.new))
    try:
        done = run_pytest(slot, list(m.tests), out, jobs=1, stop=True)
    finally:
        write_source(path, original)
    return judge(m, done), done


@dataclass
class Args:
    fast: bool
    only: str | None
    jobs: int
    baseline_from: Path | None
    where: str | None = None


def parse(argv: list[str] | None) -> Args:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the subset marked fast")
    parser.add_argument("--only", help="one mutation, by name")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"mutants at a time ({JOBS})")
    parser.add_argument(
        "--baseline-from",
        type=Path,
        help="a suite run's junit XML of this tree: the baseline, instead of running it",
    )
    parser.add_argument("--where", help=argparse.SUPPRESS)  # check_imports' probe
    ns = parser.parse_args(argv)
    return Args(ns.fast, ns.only, max(1, ns.jobs), ns.baseline_from, ns.where)


def slots(
    tmp: Path, stores: SharedStores, count: int, library: LibraryServer | None
) -> Iterator[Slot]:
    from tests.stores import REDIS_STRIDE

    pristine = tmp / "tree"
    copy_tree(ROOT, pristine)
    python_path = os.environ.get("PYTHONPATH", "")
    for index in range(count):
        tree = tmp / f"slot{index}"
        shutil.copytree(pristine, tree, symlinks=True)
        redis_url = redis_with_database(stores.redis_url, REDIS_STRIDE * index)
        env = {
            **os.environ,
            # the copy first: sessions, and the processes they start, import its code
            "PYTHONPATH": os.pathsep.join(p for p in (str(tree), python_path) if p),
            "OPSGRAPH_TEST_DATABASE_URL": stores.database_url,
            "OPSGRAPH_TEST_REDIS_URL": redis_url,
            "OPSGRAPH_TEST_DATABASE_PREFIX": f"opsgraph_mut{os.getpid()}_",
        }
        if library is not None:
            env["OPSGRAPH_TEST_LIBRARY_SERVER"] = str(library.path)
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_ADDOPTS", None)  # the run chooses its sessions' options
        yield Slot(index, tree, redis_url, env, library)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.where:
        where(args.where)
        return 0
    chosen = [
        m
        for m in MUTATIONS
        if (not args.fast or m.fast) and (args.only is None or m.name == args.only)
    ]
    if not chosen:
        print("no mutation matches", file=sys.stderr)
        return 2
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="opsgraph-mutations-"))
    stores = SharedStores.open(tmp / "stores")
    prefix = f"opsgraph_mut{os.getpid()}_"
    pool: ThreadPoolExecutor | None = None
    library: LibraryServer | None = None
    try:
        if os.environ.get("OPSGRAPH_TEST_FORKSERVER", "1") != "0":
            library = LibraryServer.start(tmp / "libraries")
        free: queue.Queue[Slot] = queue.Queue()
        for slot in slots(tmp, stores, args.jobs, library):
            free.put(slot)
        first = free.get()
        check_imports(first)
        ok, baseline_seconds, seconds = baseline(
            first, chosen, tmp / "baseline", args.jobs, args.baseline_from
        )
        free.put(first)
        if not ok:
            print(json.dumps({"mutations": len(chosen), "baseline": "failed"}))
            return 1
        if args.baseline_from:
            print(f"baseline: the guarding tests passed in {args.baseline_from}")
        else:
            print(f"baseline: the guarding tests pass unmutated ({baseline_seconds:.1f} s)")

        width = max(len(m.name) for m in chosen)
        print(f"{'mutation':<{width}}  {'outcome':<24} seconds", flush=True)
        outcomes: dict[str, str] = {}
        print_lock = threading.Lock()

        def one(i: int, m: Mutation) -> None:
            slot = free.get()
            try:
                outcome, done = run_mutant(m, slot, tmp / f"mutant{i}")
            finally:
                free.put(slot)
            with print_lock:
                outcomes[m.name] = outcome
                shown = outcome if len(outcome) <= 40 else outcome[:39] + "…"
                print(f"{m.name:<{width}}  {shown:<24} {done.seconds:7.1f}", flush=True)
                if not outcome.startswith("killed"):
                    print(tail(done.log), flush=True)

        # the longest first (by the baseline's times), so no long one is left to run alone
        # at the end
        order = sorted(enumerate(chosen), key=lambda im: -sum(seconds[t] for t in im[1].tests))
        pool = ThreadPoolExecutor(max_workers=args.jobs)
        for future in [pool.submit(one, i, m) for i, m in order]:
            future.result()
        killed = {n: o for n, o in outcomes.items() if o.startswith("killed")}
        survived = [n for n, o in outcomes.items() if o == "SURVIVED"]
        unjudged = {n: o for n, o in outcomes.items() if n not in killed and o != "SURVIVED"}
        print(
            json.dumps(
                {
                    "mutations": len(chosen),
                    "killed": len(killed),
                    # killed by an exception in the test's code, not an assertion
                    "killed_by_exception": {n: o for n, o in killed.items() if o != "killed"},
                    "survived": survived,
                    "not_killed": unjudged,
                    "jobs": args.jobs,
                    "baseline_seconds": round(baseline_seconds, 1),
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
        )
        return 1 if survived or unjudged else 0
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        with _running_lock:
            _stopping.set()
            for process in list(_running):
                _kill_group(process)
        try:
            if library is not None:
                library.stop()
            drop_databases(stores.database_url, prefix)  # what killed sessions left behind
        finally:
            stores.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # main's cleanup ran: the copies, sessions and databases are gone
        print("mutation run interrupted", file=sys.stderr)
        sys.exit(130)
