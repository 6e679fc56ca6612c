"""One object read at the GraphQL door: asked for by its id (null when there is none), the one a
subscription starts from (NOT_FOUND when there is none), or read afresh at each event of a
subscription (passed over when it is gone, or not the caller's)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.gql.context import Info
from app.gql.errors import user_error
from app.kernel.errors import NotFound
from app.platform.events import Event

N = TypeVar("N")
R = TypeVar("R")


async def or_null(
    info: Info, load: Callable[[AsyncSession], Awaitable[R]], node: Callable[[R], N]
) -> N | None:
    """One object, shaped by `node`; null when `load` finds none (a NotFound)."""
    async with info.context.reading() as session:
        try:
            row = await load(session)
        except NotFound:
            return None
    return node(row)


async def or_not_found(info: Info, load: Callable[[AsyncSession], Awaitable[R]]) -> R:
    """The object a subscription starts from; NOT_FOUND (a GraphQL error) when there is none."""
    async with info.context.reading() as session:
        try:
            return await load(session)
        except NotFound as exc:
            raise user_error(exc.message, "NOT_FOUND") from exc


async def each_found(
    info: Info,
    events: AsyncIterable[Event],
    load: Callable[[AsyncSession, Event], Awaitable[R]],
    node: Callable[[R], N],
) -> AsyncIterator[N]:
    """The object of each event, read afresh and shaped by `node`; an event whose object `load`
    does not find (a NotFound) is passed over."""
    async for event in events:
        async with info.context.reading() as session:
            try:
                row = await load(session, event)
            except NotFound:
                continue
        yield node(row)
