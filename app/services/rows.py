"""Rows read the same way by every domain: one row by its key (the domain's NotFound when there
is none, or when it is another tenant's), a list as keyset pages and a count under one filter,
rows grouped by what they belong to, a filter's conditions (each one left out when the filter
leaves its value out), and a row's attributes as the documents that carry it name them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.kernel.errors import NotFound
from app.kernel.paging import Page, PageRequest, fetch_page

R = TypeVar("R")
F = TypeVar("F")
K = TypeVar("K")


async def one(
    session: AsyncSession, stmt: Select[Any], missing: NotFound, *, for_update: bool = False
) -> Any:
    """The row `stmt` selects (locked with `for_update`); `missing` is raised when there is none."""
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise missing
    return row


async def by_key(session: AsyncSession, entity: type[R], key: Any, missing: NotFound) -> R:
    """The `entity` row whose primary key is `key` (the session's own when it holds it already);
    `missing` is raised when there is none."""
    row = await session.get(entity, key)
    if row is None:
        raise missing
    return row


async def grouped(
    session: AsyncSession, stmt: Select[Any], key: Callable[[Any], K], keys: Iterable[K]
) -> dict[K, list[Any]]:
    """The rows `stmt` selects, in its order, by `key`: each of `keys` there ([] for none)."""
    out: dict[K, list[Any]] = {k: [] for k in keys}
    for row in (await session.execute(stmt)).scalars():
        out.setdefault(key(row), []).append(row)
    return out


def attributes(row: object, *names: str) -> dict[str, Any]:
    """`row`'s attributes of `names`, by name and in that order (what an event, a webhook or an
    export document carries of it)."""
    return {name: getattr(row, name) for name in names}


def of_tenant(stmt: Select[Any], column: Any, tenant_id: str | None) -> Select[Any]:
    """`stmt` within a tenant's rows (`column` names a row's tenant); every row for None."""
    return stmt if tenant_id is None else stmt.where(column == tenant_id)


def matching(stmt: Select[Any], model: Any, filter: object, *names: str) -> Select[Any]:
    """`stmt` narrowed, for each of `names` that `filter` gives (not None), to the rows whose
    column of that name equals it."""
    for name in names:
        value = getattr(filter, name)
        if value is not None:
            stmt = stmt.where(getattr(model, name) == value)
    return stmt


def within(
    stmt: Select[Any],
    column: Any,
    after: object | None,
    before: object | None,
    *,
    inclusive: bool = False,
) -> Select[Any]:
    """`stmt` narrowed to the rows whose `column` lies after `after` and before `before` (each
    bound when given; `inclusive`: the bounds themselves too)."""
    if after is not None:
        stmt = stmt.where(column >= after if inclusive else column > after)
    if before is not None:
        stmt = stmt.where(column <= before if inclusive else column < before)
    return stmt


@dataclass(frozen=True)
class Listing(Generic[R, F]):
    """A list of `entity` rows under a filter: `filtered(stmt, filter, **scope)` narrows a select
    of the rows (or of their count) to the filter's; `order_fields` are the orders a page may
    take, `key` the row's id attribute, `sort_field` the argument a bad order is blamed on."""

    entity: type[R]
    filtered: Callable[..., Select[Any]]
    order_fields: Mapping[str, Any]
    key: str = "id"
    sort_field: str = "sort_by"

    async def page(
        self,
        *,
        session: AsyncSession | AsyncConnection,
        filter: F,
        page: PageRequest,
        columns: Sequence[str] | None = None,
        **scope: Any,
    ) -> Page[R]:
        """Whole rows, or with `columns` lean rows of just those attributes (plain tuples with
        attribute access, no ORM identity map: a plain connection can run it then)."""
        entity: Any = self.entity
        rows = select(entity) if columns is None else select(*(getattr(entity, c) for c in columns))
        return await fetch_page(
            session,
            self.filtered(rows, filter, **scope),
            order_fields=self.order_fields,
            id_column=getattr(entity, self.key),
            request=page,
            field=self.sort_field,
        )

    async def count(
        self,
        *,
        session: AsyncSession | AsyncConnection,
        filter: F,
        columns: Sequence[str] | None = None,
        **scope: Any,
    ) -> int:
        """How many rows the filter holds (`columns`, what a page reads, leaves a count alone)."""
        stmt = self.filtered(select(func.count()).select_from(self.entity), filter, **scope)
        return int((await session.execute(stmt)).scalar_one())
