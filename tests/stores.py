"""Test stores: the machine's PostgreSQL and Redis when OPSGRAPH_TEST_* are set, embedded ones
otherwise. Each test session (each pytest-xdist worker, each mutant of the mutation run) gets
a database of its own, cloned from a template the migrations built once, and a Redis database
number of its own."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from app.cli.migrate import upgrade
from app.config import asyncpg_url
from app.platform.embedded import start_postgres, start_redis

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PREFIX = "opsgraph_tpl_"
# pg_advisory_lock key ("opsgraph" in ASCII, folded into a bigint): one session at a time
# builds, clones or drops templates, so two sessions never race building the same one.
TEMPLATE_LOCK_KEY = 0x6F70736772617068
# Redis: xdist worker N uses database BASE + 2*N, and leaves BASE + 2*N + 1 (mod 16) to
# tests/test_trust.py's neighbour installation (pub/sub channels are server-wide); the
# mutation run gives its slots bases the same way (tests/mutations/run.py).
REDIS_STRIDE = 2
REDIS_DATABASES = 16


@dataclass
class Stores:
    database_url: str
    redis_url: str
    _admin_url: str
    _db_name: str
    _stops: list[Any] = field(default_factory=list)

    def close(self) -> None:
        asyncio.run(_drop_database(self._admin_url, self._db_name))
        for stop in reversed(self._stops):
            stop()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


def migrations_digest() -> str:
    """A hash of everything that decides the migrated schema: a changed or added migration
    names a new template, so a stale one is never cloned."""
    digest = hashlib.sha256()
    files = [*sorted((ROOT / "alembic" / "versions").glob("*.py")), ROOT / "alembic" / "env.py"]
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def template_name() -> str:
    return TEMPLATE_PREFIX + migrations_digest()


async def _create_from_template(admin_url: str, name: str) -> None:
    """Create database `name` as a clone of the migrated template, building the template first
    when no session has (all under one advisory lock: CREATE DATABASE ... TEMPLATE fails while
    anything else is connected to the template, and two builders would collide)."""
    template = template_name()
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK_KEY)
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", template)
        if not exists:
            # templates of other migrations (an older checkout's) are only disk now
            stale = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
                TEMPLATE_PREFIX + "%",
                template,
            )
            for row in stale:
                await conn.execute(f'ALTER DATABASE "{row[0]}" WITH IS_TEMPLATE false')
                await conn.execute(f'DROP DATABASE IF EXISTS "{row[0]}" WITH (FORCE)')
            # built under another name and renamed when complete: a builder that died half
            # way leaves no template that looks finished
            building = template + "_build"
            await conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{building}"')
            # alembic's env.py runs its own event loop: a thread of its own
            await asyncio.to_thread(upgrade, _with_database(admin_url, building))
            await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            await conn.execute(f'ALTER DATABASE "{template}" WITH IS_TEMPLATE true')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()  # also releases the advisory lock


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_databases(admin_url: str, prefix: str) -> list[str]:
    """Drop every database whose name starts with `prefix` (what killed sessions left)."""
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
        )
        for row in rows:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row[0]}" WITH (FORCE)')
        return [str(row[0]) for row in rows]
    finally:
        await conn.close()


def worker_index() -> int:
    """0, or N for pytest-xdist's worker gwN."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if re.fullmatch(r"gw\d+", name) else 0


def redis_with_database(url: str, offset: int) -> str:
    """`url` moved `offset` databases on, refused when it falls outside Redis's 16 (the
    neighbour a test borrows is the next one, modulo 16)."""
    head, sep, query = url.partition("?")
    base, slash, db = head.rpartition("/")
    if not slash or base.endswith("/"):  # redis://host:port: database 0
        base, db = head, "0"
    number = int(db or 0) + offset
    if number >= REDIS_DATABASES:
        raise RuntimeError(
            f"Redis database {number} is beyond 0-15: start from a lower database in {url!r}"
            " or run fewer workers"
        )
    return f"{base}/{number}{sep}{query}"


def embedded_postgres_dir() -> Path:
    """One embedded PostgreSQL for every session on this machine (pgserver shares a data
    folder between processes and stops the server with its last user), so the migrated
    template outlives a session as it does on the machine's own PostgreSQL."""
    return Path(tempfile.gettempdir()) / "opsgraph-test-postgres"


def open_stores(tmp: Path) -> Stores:
    stops: list[Any] = []
    admin = os.environ.get("OPSGRAPH_TEST_DATABASE_URL", "")
    if not admin:
        pg = start_postgres(embedded_postgres_dir())
        stops.append(pg.stop)
        admin = pg.url
    admin = asyncpg_url(admin)
    redis_url = os.environ.get("OPSGRAPH_TEST_REDIS_URL", "")
    if redis_url:
        redis_url = redis_with_database(redis_url, REDIS_STRIDE * worker_index())
    else:
        rd = start_redis(tmp, persist=False)  # a server per session: database 0 is its own
        stops.append(rd.stop)
        redis_url = rd.url
    # the mutation run names its sessions' databases, to drop what a killed one leaves
    prefix = os.environ.get("OPSGRAPH_TEST_DATABASE_PREFIX", "opsgraph_test_")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", prefix):  # it is spliced into SQL
        raise RuntimeError(
            f"OPSGRAPH_TEST_DATABASE_PREFIX {prefix!r}: lower-case letters, digits, _"
        )
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_from_template(admin, name))
    return Stores(
        database_url=_with_database(admin, name),
        redis_url=redis_url,
        _admin_url=admin,
        _db_name=name,
        _stops=stops,
    )
