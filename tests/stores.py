"""Test stores: the machine's PostgreSQL and Redis when OPSGRAPH_TEST_* are set, embedded ones
otherwise. Each test session gets its own fresh database, built by the migrations."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from app.config import asyncpg_url
from app.embedded import start_postgres, start_redis
from app.migrate import upgrade


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


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


def open_stores(tmp: Path) -> Stores:
    stops: list[Any] = []
    admin = os.environ.get("OPSGRAPH_TEST_DATABASE_URL", "")
    if not admin:
        pg = start_postgres(tmp)
        stops.append(pg.stop)
        admin = pg.url
    admin = asyncpg_url(admin)
    redis_url = os.environ.get("OPSGRAPH_TEST_REDIS_URL", "")
    if not redis_url:
        rd = start_redis(tmp, persist=False)
        stops.append(rd.stop)
        redis_url = rd.url
    name = f"opsgraph_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_database(admin, name))
    url = _with_database(admin, name)
    upgrade(url)
    return Stores(
        database_url=url, redis_url=redis_url, _admin_url=admin, _db_name=name, _stops=stops
    )
