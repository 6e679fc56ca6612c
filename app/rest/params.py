"""Query parameters and page arithmetic shared by seed 001's paginated lists."""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, WithJsonSchema

from app.services.paging import PageRequest


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _iso_only(value: Any) -> Any:
    # pydantic would read "0.5" (or 0 in a body) as seconds since 1970; the seeds mean ISO 8601
    # date-time strings
    if isinstance(value, int | float):
        raise ValueError("expected an ISO 8601 date-time string, e.g. 2026-01-24T19:30:00Z")
    if isinstance(value, str) and not _ISO.match(value.strip()):
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-01-24T19:30:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]

# what a malformed id stands for: a UUID no row has, so every route answers it with its own
# not-found reply (404 `job_not_found`, `alert_not_found`; seed 000's 400 on DELETE)
NO_SUCH_ID = uuid.UUID(int=0)


def _any_id(value: Any) -> Any:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return NO_SUCH_ID


# Ids in paths are strings in the contract (the seeds write `job_abc123`, `alert_001`): a
# malformed one is simply not found, never a 422.
PathId = Annotated[
    uuid.UUID,
    BeforeValidator(_any_id),
    # the shape of every id the seeds and opsgraph write (a UUID, `job_abc123`, `alert_001`);
    # anything else is answered not found all the same
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,200}$"}),
]


def json_integer(value: Any) -> Any:
    # JSON Schema's integer: 3 and 3.0 are integers, "3" and true are not
    if isinstance(value, str | bool):
        raise ValueError("expected an integer")
    return value


# (a nullable JsonInt renders its bounds badly in JSON Schema: use int with a before-validator
# calling json_integer there instead)
JsonInt = Annotated[int, BeforeValidator(json_integer)]


def page_count(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0


# An offset reads every row before it: pages start at most this deep (GraphQL cursors have no
# such limit). Declared in the OpenAPI document: `offset` ≤ 10,000, `page` ≤ 101 (with at most
# 100 per page, page 101 starts at row 10,000).
OFFSET_MAX = 10_000
PAGE_MAX = OFFSET_MAX // 100 + 1
Page = Annotated[
    int,
    Query(ge=1, le=PAGE_MAX, description=f"Page number (1-indexed, at most {PAGE_MAX})"),
]
Offset = Annotated[
    int, Query(ge=0, le=OFFSET_MAX, description=f"Results to skip (at most {OFFSET_MAX})")
]


def page_request(
    *,
    page: int,
    page_size: int,
    order_by: str,
    descending: bool,
    offset: int | None = None,
    offset_max: int = OFFSET_MAX,
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
