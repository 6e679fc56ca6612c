"""Relay connections for every list: opaque keyset cursors, first/after and last/before, page
info, and `totalCount` counted only when selected.

A cursor holds the sort value and id of its row plus a tag of the list, order and filter it was
made for; a cursor brought to another list, order or filter is refused (BAD_USER_INPUT) rather
than silently read in the wrong order. Rows inserted or changed between pages never shift a
page: the next one starts strictly after the last row seen.

Every list is declared the same way: its field takes `extensions=[Paged(Filter, Order)]` (the
four Relay arguments and the list's filter and order inputs, declared once) and its resolver a
`window: Slice`, which it hands to `connection` with the list (`Listed`: its name, the
service's pages, what shapes a row, a fixed order unless it has an order input) and the
service's filter made of the window's."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.extensions import FieldExtension
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField

from app.edge.uow import read, read_only
from app.gql.context import Info
from app.gql.errors import user_error
from app.kernel.errors import InvalidInput
from app.kernel.paging import Keyset, Page, PageRequest

N = TypeVar("N")
R = TypeVar("R")
T = TypeVar("T")

DEFAULT_PAGE = 50
_VERSION = "k1"


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    node: N
    tag: strawberry.Private[str]
    key: strawberry.Private[Keyset]

    @strawberry.field
    def cursor(self) -> str:
        # encoded when asked for: most list queries never select a cursor per edge
        return encode_cursor(self.tag, self.key)


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Counted only when asked for.")
    async def total_count(self) -> int:
        return await self.counter()


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, timedelta):
        return {"d": value // timedelta(microseconds=1)}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return value


def _decode_value(raw: Any) -> Any:
    if isinstance(raw, dict) and raw.keys() == {"t"} and isinstance(raw["t"], str):
        value = datetime.fromisoformat(raw["t"])
        if value.tzinfo is None:
            raise ValueError("naive time")
        return value
    if isinstance(raw, dict) and raw.keys() == {"d"} and isinstance(raw["d"], int):
        return timedelta(microseconds=raw["d"])
    if isinstance(raw, dict) and raw.keys() == {"u"} and isinstance(raw["u"], str):
        return uuid.UUID(raw["u"])
    if raw is None or isinstance(raw, bool | int):
        return raw
    if isinstance(raw, float) and math.isfinite(raw):
        return raw
    if isinstance(raw, str) and "\x00" not in raw:
        return raw
    raise ValueError("unsupported value")


def encode_cursor(tag: str, key: Keyset) -> str:
    payload = json.dumps(
        [tag, _encode_value(key.value), _encode_value(key.id)], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, tag: str, argument: str) -> Keyset:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not (isinstance(raw, list) and len(raw) == 3):
            raise ValueError("not a cursor")
        cursor_tag, value, row_id = raw
        key = Keyset(_decode_value(value), _decode_value(row_id))
        if key.id is None:
            raise ValueError("a cursor names its row")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise user_error(f"`{argument}` is not a cursor of this list") from None
    if cursor_tag != tag:
        raise user_error(
            f"`{argument}` was made for another order or filter; start again without a cursor"
        )
    return key


def cursor_tag(name: str, order_by: str, descending: bool, scope: object) -> str:
    """Identifies a list, its order and its filter (repr of a frozen dataclass is stable)."""
    digest = hashlib.blake2s(
        repr((name, order_by, descending, scope)).encode(), digest_size=8
    ).hexdigest()
    return f"{_VERSION}.{digest}"


@dataclass(frozen=True)
class Slice:
    """The four Relay arguments as a resolver received them, and the list's own filter and
    order inputs (their defaults when left out) when its `Paged` declares them."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None
    filter: Any = None
    order: Any = None


_RELAY = (("first", int), ("after", str), ("last", int), ("before", str))


class Paged(FieldExtension):
    """The arguments of every list, declared once: the field takes `first`, `after`, `last` and
    `before`, then `filter` and `orderBy` when given their input types (then its own
    arguments), its resolver one `window: Slice`."""

    def __init__(self, filter: type | None = None, order: type | None = None) -> None:
        self.inputs = {"filter": filter, "order_by": order}

    def apply(self, field: StrawberryField) -> None:
        own = [a for a in field.arguments if a.python_name != "window"]
        declared = [*_RELAY, *((name, kind) for name, kind in self.inputs.items() if kind)]
        field.arguments = [
            *(
                StrawberryArgument(
                    python_name=name,
                    graphql_name=None,
                    type_annotation=StrawberryAnnotation(kind | None),
                    default=None,
                )
                for name, kind in declared
            ),
            *own,
        ]

    def map_arguments(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(kwargs)
        given = {name: kwargs.pop(name, None) for name, _ in _RELAY}
        for name, kind in self.inputs.items():
            if kind is not None:
                value = kwargs.pop(name, None)
                given["order" if name == "order_by" else name] = value or kind()
        return {**kwargs, "window": Slice(**given)}


@dataclass(frozen=True)
class Sort:
    """A list's order: its column and direction."""

    column: str
    descending: bool = True


class Ordering(Protocol):
    """A list's order input (`TaskOrder` ...): one of its order fields and a direction."""

    @property
    def field(self) -> Enum: ...

    @property
    def direction(self) -> OrderDirection: ...


def _sort(order: Ordering | Sort) -> Sort:
    if isinstance(order, Sort):
        return order
    return Sort(order.field.value, descending=order.direction == OrderDirection.DESC)


def _limit(info: Info, argument: str, value: int) -> int:
    cap = info.context.state.settings.page_size_max
    if not 1 <= value <= cap:
        raise user_error(f"{argument} must be between 1 and {cap}")
    return value


class Pages(Protocol[R]):
    """A service's list (app/services/rows.py's `Listing`): `page(session=, filter=, page=, ...)`,
    a page of rows under a filter, and `count(session=, filter=, ...)`, how many it holds."""

    @property
    def page(self) -> Callable[..., Awaitable[Page[R]]]: ...

    @property
    def count(self) -> Callable[..., Awaitable[int]]: ...


@dataclass(frozen=True)
class Listed(Generic[R, N]):
    """A list as GraphQL serves it: `name` (what its cursors are tagged with), the service's
    `pages`, what shapes a row (`node`), and its fixed `order` (else the one its order input
    asks for). With `single_statement` (services that read plain columns in one statement)
    its queries get a connection of the autocommit reads engine: no transaction around them."""

    name: str
    pages: Pages[R]
    node: Callable[[R], N]
    order: Sort | None = None
    single_statement: bool = False


async def connection(
    info: Info, window: Slice, listed: Listed[R, N], scope: object, **within: Any
) -> Connection[N]:
    """One page of `listed` under `scope`, the service's filter: `pages.page(session=,
    filter=scope, page=, **within)` and, only if `totalCount` is selected, `pages.count(session=,
    filter=scope, **within)` (`within`: what else both take, a tenant ...)."""
    if window.first is not None and window.last is not None:
        raise user_error("pass either first or last, not both")
    sort = _sort(listed.order or window.order)
    tag = cursor_tag(listed.name, sort.column, sort.descending, scope)
    from_end = window.last is not None
    if from_end:
        limit = _limit(info, "last", window.last or 0)
    else:
        limit = _limit(info, "first", window.first if window.first is not None else DEFAULT_PAGE)
    request = PageRequest(
        limit=limit,
        order_by=sort.column,
        descending=sort.descending,
        after=decode_cursor(window.after, tag, "after") if window.after else None,
        before=decode_cursor(window.before, tag, "before") if window.before else None,
        from_end=from_end,
    )
    state = info.context.state

    async def run(query: Callable[[Any], Awaitable[T]]) -> T:
        if listed.single_statement:
            return await read(state.reads, query)
        async with read_only(state.sessionmaker) as session:
            return await query(session)

    pages = listed.pages
    try:
        result = await run(
            lambda reader: pages.page(session=reader, filter=scope, page=request, **within)
        )
    except InvalidInput as exc:
        raise user_error(exc.message) from None
    edges = [Edge(node=listed.node(row), tag=tag, key=key) for row, key in result.rows]

    async def counter() -> int:
        return await run(lambda reader: pages.count(session=reader, filter=scope, **within))

    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=window.before is not None if from_end else result.more,
            has_previous_page=result.more if from_end else window.after is not None,
            start_cursor=encode_cursor(tag, edges[0].key) if edges else None,
            end_cursor=encode_cursor(tag, edges[-1].key) if edges else None,
        ),
        counter=counter,
    )
