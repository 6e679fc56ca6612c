"""The unit of work: one transaction, then its effects (events, enqueues) after commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import dispatch
from app.services import effects


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], redis: ArqRedis
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        try:
            async with session.begin():
                yield session
        except BaseException:
            effects.discard(session)
            raise
        pending = effects.take(session)
    await dispatch.carry_out(redis, pending)


@asynccontextmanager
async def read_only(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session, session.begin():
        yield session
