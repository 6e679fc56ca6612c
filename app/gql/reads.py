"""One object read at the GraphQL door: asked for by its id (null when there is none), the one a
subscription starts from (NOT_FOUND when there is none), or read afresh at each event of a
subscription (passed over when it is gone, or not the caller's); and which events a
subscription takes."""

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


def events_of(
    kind: str, *, tenant_id: str | None = None, key: str | None = None, **data: object
) -> Callable[[Event], bool]:
    """Events of `kind`: a tenant's only when `tenant_id` is given (as the event's data names
    its tenant), of the object `key` when given, and whose data hold each of `data` given
    (those left None are not asked for)."""
    wanted = {name: value for name, value in data.items() if value is not None}

    def match(e: Event) -> bool:
        return (
            e.kind == kind
            and (tenant_id is None or e.data.get("tenant_id") == tenant_id)
            and (key is None or e.key == key)
            and all(e.data.get(name) == value for name, value in wanted.items())
        )

    return match


async def live(
    info: Info,
    wanted: Callable[[Event], bool],
    load: Callable[[AsyncSession, Event], Awaitable[R]],
    node: Callable[[R], N],
) -> AsyncIterator[N]:
    """A subscription's objects: for each event `wanted` takes, its object read afresh
    (`each_found`)."""
    async with info.context.state.broker.subscribe(wanted) as sub:
        async for found in each_found(info, sub, load, node):
            yield found


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
