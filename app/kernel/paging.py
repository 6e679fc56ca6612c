"""Page requests every list service answers: keyset pages (rows after or before a known row, in
a stated order) for cursors, offsets for the REST pages their seeds document (every page a
response counts is served: a deep offset is found on the order's key columns first).

Orders are (sort column, id) in one direction, nulls last where the column can be null, so an
index on (column, id) serves both the order and the keyset condition."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.kernel.errors import InvalidInput

R = TypeVar("R")


@dataclass(frozen=True)
class Keyset:
    """Where a row sits in an order: its sort value (None for a null) and its id."""

    value: Any
    id: Any  # the row's id: a UUID, an integer or a string, as the table keys it


@dataclass(frozen=True)
class PageRequest:
    limit: int
    order_by: str = "created_at"
    descending: bool = True
    after: Keyset | None = None
    before: Keyset | None = None
    # read from the end of the range (Relay's `last`): the rows just before `before`
    from_end: bool = False
    # REST pages only; GraphQL never sends one
    offset: int = 0


@dataclass(frozen=True)
class Page(Generic[R]):
    rows: list[tuple[R, Keyset]]
    # more rows lie beyond the page in the direction it was read
    more: bool


def nullable(column: Any) -> bool:
    prop = getattr(column, "property", None)
    if prop is not None and getattr(prop, "columns", None):
        return bool(prop.columns[0].nullable)
    return True  # an expression (e.g. a duration) may be null


def order_clause(column: Any, id_column: Any, *, descending: bool) -> tuple[Any, Any]:
    """(column, id) in one direction; nulls last where the column can be null."""
    ordered = column.desc() if descending else column.asc()
    if nullable(column):
        ordered = ordered.nulls_last()
    return ordered, (id_column.desc() if descending else id_column.asc())


def _reverse_clause(column: Any, id_column: Any, *, descending: bool) -> tuple[Any, Any]:
    """The exact reverse of order_clause (nulls first), for reading a range from its end."""
    ordered = column.asc() if descending else column.desc()
    if nullable(column):
        ordered = ordered.nulls_first()
    return ordered, (id_column.asc() if descending else id_column.desc())


def follows(column: Any, id_column: Any, key: Keyset, *, descending: bool) -> Any:
    """Rows that come after `key` in the order."""
    later = operator.lt if descending else operator.gt
    if key.value is None:  # nulls come last: only nulls with a later id remain
        return and_(column.is_(None), later(id_column, key.id))
    condition = later(tuple_(column, id_column), tuple_(key.value, key.id))
    return or_(condition, column.is_(None)) if nullable(column) else condition


def precedes(column: Any, id_column: Any, key: Keyset, *, descending: bool) -> Any:
    """Rows that come before `key` in the order."""
    earlier = operator.gt if descending else operator.lt
    if key.value is None:  # every non-null, and the nulls with an earlier id
        return or_(column.is_not(None), and_(column.is_(None), earlier(id_column, key.id)))
    # a null column makes the row comparison null, so nulls (which come last) drop out
    return earlier(tuple_(column, id_column), tuple_(key.value, key.id))


def _fits(column: Any, key: Keyset) -> bool:
    """A cursor's value must be of the column's type (cursors are opaque, not trusted)."""
    if key.value is None:
        return nullable(column)
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return False
    if isinstance(key.value, bool):
        return expected is bool
    if expected is float:
        return isinstance(key.value, int | float)
    return isinstance(key.value, expected)


async def fetch_page(
    session: AsyncSession | AsyncConnection,
    stmt: Select[Any],
    *,
    order_fields: Mapping[str, Any],
    id_column: Any,
    request: PageRequest,
    field: str = "sort_by",
) -> Page[Any]:
    """Run `stmt` (a filtered select of one entity, or of columns: those a plain connection
    can run too) as the page `request` asks for."""
    column = order_fields.get(request.order_by)
    if column is None:
        raise InvalidInput(f"cannot sort by {request.order_by!r}", field=field)
    desc = request.descending
    for name, key in (("after", request.after), ("before", request.before)):
        if key is not None and not (_fits(column, key) and _fits(id_column, Keyset(key.id, 0))):
            raise InvalidInput(f"`{name}` does not belong to this order", field=name)
    stmt = stmt.add_columns(column.label("sort_key"))
    if request.after is not None:
        stmt = stmt.where(follows(column, id_column, request.after, descending=desc))
    if request.before is not None:
        stmt = stmt.where(precedes(column, id_column, request.before, descending=desc))
    clause: Callable[..., tuple[Any, Any]] = _reverse_clause if request.from_end else order_clause
    if request.offset:
        # Seek, then read: the page's first row is found by skipping over the key columns alone
        # (an index-only scan where an index serves the order), and the page is read from it
        # as a keyset, so a deep page never fetches the full rows it skips.
        seek = (
            stmt.with_only_columns(column, id_column, maintain_column_froms=True)
            .order_by(*order_clause(column, id_column, descending=desc))
            .offset(request.offset)
            .limit(1)
        )
        first = (await session.execute(seek)).first()
        if first is None:
            return Page(rows=[], more=False)
        start = Keyset(first[0], first[1])
        stmt = stmt.where(
            or_(follows(column, id_column, start, descending=desc), id_column == start.id)
        )
    stmt = stmt.order_by(*clause(column, id_column, descending=desc)).limit(request.limit + 1)
    # one entity (its row, then the sort key), or chosen columns (the row itself)
    described = stmt.column_descriptions
    entity = len(described) == 2 and isinstance(described[0].get("expr"), type)
    result = list((await session.execute(stmt)).all())
    more = len(result) > request.limit
    result = result[: request.limit]
    if request.from_end:
        result.reverse()
    key = id_column.key
    rows = [(r[0] if entity else r, r[-1]) for r in result]
    return Page(rows=[(row, Keyset(value, getattr(row, key))) for row, value in rows], more=more)
