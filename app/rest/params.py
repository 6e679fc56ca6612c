"""Parameter types the REST routes share: dates, ids, integers as JSON means them, the page
parameters of the seeds' lists with their bounds; and the refusal of unknown parameters."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Header, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, Field, WithJsonSchema

from app.kernel.bounds import LIMIT_MAX, PAGE_SIZE_MAX


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


# ids of bigint rows (events, detections, enrichments) up to 2**53: exact in every JSON number
# (a 2**63 bound is not, once read as a float)
ROW_ID_MAX = 2**53
RowId = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]
RowIdPath = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


def json_integer(value: Any) -> Any:
    # JSON Schema's integer: 3 and 3.0 are integers, "3" and true are not
    if isinstance(value, str | bool):
        raise ValueError("expected an integer")
    return value


# (a nullable JsonInt renders its bounds badly in JSON Schema: use int with a before-validator
# calling json_integer there instead)
JsonInt = Annotated[int, BeforeValidator(json_integer)]


# Every page a response counts is served (`pages`, `total`): a deep page seeks its first row on
# the order's key columns (services/paging.py), so it costs a key scan, not the rows it skips.
# The bound is the documented size of the parameters themselves (a 32-bit integer).
OFFSET_MAX = 2**31 - 1
Page = Annotated[
    int,
    Query(ge=1, le=OFFSET_MAX, description="Page number (1-indexed)"),
]
Offset = Annotated[int, Query(ge=0, le=OFFSET_MAX, description="Results to skip")]
# seed 001's page size
PageSize = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="Items per page")]
# seed 002's `limit` of its lists, as the seed states it
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX, description=f"Max results (1-{LIMIT_MAX})")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameters a route reads, its dependencies' included (kept on the route: one
    set per route, computed on its first request)."""
    names: frozenset[str] | None = getattr(route, "_opsgraph_query", None)
    if names is None:
        names = frozenset(_query_names(route.dependant))
        setattr(route, "_opsgraph_query", names)  # noqa: B010 (an attribute of our own)
    return names


async def known_query_only(request: Request) -> None:
    """Every REST route's first dependency: a query parameter the route does not read is a 422
    naming it, so a mistyped filter (`?stauts=failed`) or flag (`?overwite=true`) is never
    silently ignored. Seed 003's two paths answer it as their flat `detail` string."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = declared_query(route)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter {name!r}; this path takes: {takes}",
                    "type": "extra_forbidden",
                    "input": request.query_params.get(name),
                }
                for name in unknown
            ]
        )


# Idempotent creation (issue 33): the client's key for a POST, per tenant; the same key with the
# same body answers what it made (with `Idempotent-Replayed: true`), with another body a 409
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        # a batch's item i takes "<key>:<i>", which must fit a key's 255 characters
        max_length=250,
        description="Create at most once: the same key with the same body answers what it made "
        "(kept OPSGRAPH_IDEMPOTENCY_TTL, per tenant); with another body, 409.",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
