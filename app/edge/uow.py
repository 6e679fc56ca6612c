"""The unit of work: one transaction, then its effects (events, enqueues) after commit.

Before commit, the reactions registered with the task core (workflows, the camera pipeline,
the audit: app/edge/domains.py) react to the task changes of the transaction, so a step's
completion and the scheduling of its successors are one atomic write."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from arq.connections import ArqRedis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.kernel import effects
from app.kernel.errors import DomainError
from app.platform import dispatch
from app.services.tasks import commands as tasks
from app.services.tasks import reactions

log = logging.getLogger(__name__)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], redis: ArqRedis
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        try:
            async with session.begin():
                yield session
                await reactions.react(session)
        except BaseException:
            effects.discard(session)
            raise
        pending = effects.take(session)
    await dispatch.carry_out(redis, pending)
    for effect in pending:
        if isinstance(effect, effects.CancelTask):
            await _cancel(sessionmaker, redis, effect.task_id)


async def _cancel(
    sessionmaker: async_sessionmaker[AsyncSession], redis: ArqRedis, task_id: str
) -> None:
    try:
        async with unit_of_work(sessionmaker, redis) as session:
            await tasks.cancel_task(
                session=session, task_id=uuid.UUID(task_id), reason="its workflow stopped"
            )
    except DomainError:
        pass  # it finished meanwhile


@asynccontextmanager
async def read_only(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session, session.begin():
        yield session


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A plain transaction for writes that carry no after-commit effects."""
    async with sessionmaker() as session, session.begin():
        yield session


T = TypeVar("T")


async def read(engine: AsyncEngine, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """One read on a connection of the autocommit reads engine (no BEGIN/COMMIT, no pre-ping
    round trip: a 50-row page costs its one statement). A connection PostgreSQL dropped meets
    the read once; the read is simply run again on a fresh one."""
    for attempt in (1, 2):
        try:
            async with engine.connect() as conn:
                return await query(conn)
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
            log.info("a read met a dropped connection; reading again")
    raise AssertionError("unreachable")
