"""Query parameters and page arithmetic shared by seed 001's paginated lists."""

from __future__ import annotations

import math
from enum import StrEnum

from fastapi.exceptions import RequestValidationError

from app.services.paging import PageRequest


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


def page_count(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0


def page_request(
    *,
    page: int,
    page_size: int,
    order_by: str,
    descending: bool,
    offset_max: int,
    offset: int | None = None,
) -> PageRequest:
    """A seed's page/page_size (or limit/offset: pass `offset`) as a service page request,
    refused with 422 when it would start deeper than `offset_max` rows: an offset costs every
    row before it."""
    by_offset = offset is not None
    offset = offset if offset is not None else (page - 1) * page_size
    if offset > offset_max:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "offset" if by_offset else "page"),
                    "msg": f"pages may start at most {offset_max} rows deep (this one starts"
                    f" at row {offset}); narrow the filter or page with GraphQL cursors",
                    "type": "value_error.page_too_deep",
                    "input": offset if by_offset else page,
                }
            ]
        )
    return PageRequest(limit=page_size, order_by=order_by, descending=descending, offset=offset)
