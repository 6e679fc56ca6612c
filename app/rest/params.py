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
    *, page: int, page_size: int, order_by: str, descending: bool, offset_max: int
) -> PageRequest:
    """A seed's page/page_size as a service page request, refused (422 on `page`) when it would
    start deeper than `offset_max` rows: an offset costs every row before it."""
    offset = (page - 1) * page_size
    if offset > offset_max:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "page"),
                    "msg": f"pages may start at most {offset_max} rows deep (page {page} of"
                    f" {page_size} starts at row {offset}); narrow the filter or page with"
                    " GraphQL cursors",
                    "type": "value_error.page_too_deep",
                    "input": page,
                }
            ]
        )
    return PageRequest(limit=page_size, order_by=order_by, descending=descending, offset=offset)
