"""Pages of a service's list (its `Listing`: a page of rows under a filter, and the count of
all that match) as the seeds answer them: seed 002's windows (`limit`, `offset`; answered with
`count`, `total`, `limit`, `offset`) and seed 001's numbered pages (`page`, `page_size`;
answered with `total`, `page`, `page_size`, `pages`)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principals import Principal
from app.edge.state import AppState
from app.edge.uow import read_only
from app.kernel.paging import Page, PageRequest
from app.rest.params import SortOrder


class Listing(Protocol):
    """A service's list (app/services/rows.py `Listing`)."""

    async def page(
        self, *, session: AsyncSession, filter: Any, page: PageRequest, **scope: Any
    ) -> Page[Any]: ...

    async def count(self, *, session: AsyncSession, filter: Any, **scope: Any) -> int: ...


async def listed(
    session: AsyncSession, listing: Listing, filter: object, page: PageRequest, **scope: Any
) -> tuple[list[Any], int]:
    """One page of `listing`'s rows under `filter`, and the total the filter matches."""
    found = await listing.page(session=session, filter=filter, page=page, **scope)
    total = await listing.count(session=session, filter=filter, **scope)
    return [row for row, _ in found.rows], total


async def windowed(
    state: AppState,
    listing: Listing,
    filter: object,
    *,
    order_by: str,
    limit: int,
    offset: int,
    shape: Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]] | None = None,
) -> tuple[list[Any], dict[str, int]]:
    """Seed 002's window of a list, newest first: its rows (each made an answer by `shape`,
    which may read more in the same session), and the figures its answer carries beside them:
    `count` (on this page), `total` (matching), `limit`, `offset`."""
    window = PageRequest(limit=limit, order_by=order_by, offset=offset)
    async with read_only(state.sessionmaker) as session:
        found, total = await listed(session, listing, filter, window)
        items = await shape(session, found) if shape else found
    return items, {"count": len(items), "total": total, "limit": limit, "offset": offset}


def page_count(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0


async def numbered(
    state: AppState,
    listing: Listing,
    filter: object,
    page: int,
    page_size: int,
    sort_by: StrEnum,
    sort_order: SortOrder,
    principal: Principal,
) -> tuple[list[Any], dict[str, int]]:
    """Seed 001's page `page` (1-indexed, `page_size` rows) of the caller's rows in the order
    asked, and the figures its answer carries beside them: `total`, `page`, `page_size`,
    `pages`."""
    window = PageRequest(
        limit=page_size,
        order_by=sort_by.value,
        descending=sort_order == SortOrder.desc,
        offset=(page - 1) * page_size,
    )
    async with read_only(state.sessionmaker) as session:
        found, total = await listed(session, listing, filter, window, tenant_id=principal.tenant_id)
    figures = {"total": total, "page": page, "page_size": page_size}
    return found, {**figures, "pages": page_count(total, page_size)}
