"""Declarative base, the async engine factory, the session maker and the raw asyncpg pool."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(
    url: str, *, pool_size: int = 10, pre_ping: bool = True, autocommit: bool = False
) -> AsyncEngine:
    """`pre_ping` checks each connection on checkout (one round trip) so a request never meets
    a connection PostgreSQL dropped; workers turn it off and retry their writes instead.
    `autocommit`: statements run outside any transaction (no BEGIN/COMMIT round trips), for
    single-statement reads (app/edge/uow.read)."""
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping, **options
    )


def make_sessionmaker(
    engine: AsyncEngine, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """`info` reaches every session (services read deployment settings from it, e.g. the
    pipeline's batch windows, where a reaction inside a transaction needs them)."""
    return async_sessionmaker(engine, expire_on_commit=False, info=info or {})


async def _json_codecs(conn: asyncpg.Connection) -> None:
    # As the engine's JSONB type does: Python values in, Python values out.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def make_raw_pool(engine: AsyncEngine, *, size: int) -> asyncpg.Pool:
    """A plain asyncpg pool to the engine's database (same URL, same connect arguments), for
    hot paths that run single prebuilt statements: no session, no BEGIN/COMMIT round trips."""
    _, params = engine.dialect.create_connect_args(engine.url)
    params.pop("prepared_statement_name_func", None)
    pool = await asyncpg.create_pool(
        min_size=1, max_size=size, init=_json_codecs, reset=_no_session_state, **params
    )
    assert pool is not None
    return pool


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """asyncpg's default reset on release is a round trip (UNLISTEN, RESET ALL, CLOSE ALL,
    advisory unlock) after every statement; this pool's users run single statements and
    leave no session state. A transaction left open is still rolled back by asyncpg."""
