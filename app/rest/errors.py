"""Store errors as a client should see them: an outage is 503 (the API process stays up and
recovers by itself when PostgreSQL or Redis come back); a value the database refused is 422; any
other error is a bug: 500 with no exception text (the log has the traceback). A value its column
cannot hold never reaches the database: app/platform/storable.py refuses it before the flush
(`Unstorable`) and it is a 422 whose `loc` names the field."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.platform.outages import STORE_ERRORS, is_data_error, is_outage
from app.platform.storable import Unstorable
from app.rest.refusals import Coded
from app.services.tasks.submissions import TenantQueueFull

log = logging.getLogger(__name__)


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_loc(field: str | None, where: str = "body") -> list[str | int]:
    """A service's field as seed 001's `loc`: 'steps[2].task_type' -> ['body', 'steps', 2,
    'task_type']."""
    loc: list[str | int] = [where]
    for name, index in _FIELD_PART.findall(field or ""):
        loc.append(int(index) if index else name)
    return loc


async def unstorable(request: Request, exc: Exception) -> JSONResponse:
    """A value its column cannot hold (refused before the flush), naming the field."""
    assert isinstance(exc, Unstorable)
    log.info("%s %s: %s", request.method, request.url.path, exc.message)
    item = {"loc": field_loc(exc.field), "msg": exc.message, "type": "value_error.unstorable"}
    if request.url.path in FLAT_DETAIL_PATHS:
        return JSONResponse({"detail": flat_detail([item])}, status_code=422)
    return JSONResponse({"detail": [item]}, status_code=422)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if not is_outage(exc):
        if is_data_error(exc):
            log.info("%s %s: a value was refused by the database", request.method, request.url.path)
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "a value in this request cannot be stored",
                            "type": "value_error.unstorable",
                        }
                    ]
                },
                status_code=422,
            )
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)
    detail = (
        "LLM queue service unavailable"
        if request.url.path.startswith("/api/v1/llm")
        else "service unavailable: a backing store is unreachable"
    )
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


class Problem(BaseModel):
    detail: str


class RefusedProblem(BaseModel):
    detail: str
    code: str  # seed 004's `insufficient_permissions`


class InvalidItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidInputProblem(BaseModel):
    detail: list[InvalidItem]


def _documented(description: str, model: type[BaseModel] = Problem) -> dict[str, Any]:
    return {"model": model, "description": description}


def document_statuses(router: APIRouter) -> APIRouter:
    """Every status an operation can answer goes into the OpenAPI document with its body:
    credentials (401, 403), input hygiene (422 on any request), oversized bodies (413), an
    unknown id in the path (404), a store outage (503)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        flat = route.path in FLAT_DETAIL_PATHS
        extra = {
            401: _documented(
                "No credential, or one that is not valid (with both an Authorization header and"
                " X-API-Key, the bearer token alone is judged)"
            ),
            403: _documented(
                "The credential's role may not do this, or the operation is installation-wide"
                " and the credential is tenant-scoped",
                RefusedProblem,
            ),
            422: _documented("Invalid input (parameter named in the detail)", Problem)
            if flat
            else _documented("Invalid input (parameter named in loc)", InvalidInputProblem),
            503: _documented("PostgreSQL or Redis is unreachable; retry later"),
        }
        if (route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
            extra[413] = _documented("Request body too large", InvalidInputProblem)
        if "{" in route.path:
            extra[404] = _documented("Unknown id")
        for status, spec in extra.items():
            route.responses.setdefault(status, spec)
    return router


TOO_LARGE = "payload_too_large"
# seed 003 writes its error bodies as {"detail": "string"}: its two paths answer bad input so
FLAT_DETAIL_PATHS = frozenset({"/api/v1/tasks", "/api/v1/metrics"})


def flat_detail(errors: list[dict[str, Any]]) -> str:
    """Seed 001's detail list as one sentence: `body.prompt: Field required; ...`."""
    return "; ".join(
        ".".join(str(p) for p in e.get("loc", ())) + ": " + str(e.get("msg", "")) for e in errors
    )


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A request model may mark an overflow (too many items in one request) with the error
    type `payload_too_large`: that is a 413, not a 422."""
    assert isinstance(exc, RequestValidationError)
    for error in exc.errors():
        if error.get("type") == TOO_LARGE:
            return JSONResponse({"detail": error.get("msg", ""), "code": TOO_LARGE}, 413)
    if request.url.path in FLAT_DETAIL_PATHS:
        return JSONResponse({"detail": flat_detail(list(exc.errors()))}, status_code=422)
    return await request_validation_exception_handler(request, exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Refusals by role carry seed 004's code beside the message, as seed 004's routes'
    refusals (`Coded`) do."""
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, Coded):
        return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status_code)
    if exc.status_code == 403:
        return JSONResponse(
            {"detail": exc.detail, "code": "insufficient_permissions"},
            status_code=403,
            headers=exc.headers,
        )
    if exc.status_code == 404 and exc.detail == "Not Found":
        # a path no route matches (an id holding a "/" or a control character): it carries a
        # code like the seed 004 routes' own not-found answers, so it reads like any of them
        return JSONResponse({"detail": exc.detail, "code": "not_found"}, status_code=404)
    return await http_exception_handler(request, exc)


async def queue_full(request: Request, exc: Exception) -> Response:
    """429: the tenant has OPSGRAPH_MAX_QUEUED_PER_TENANT tasks queued (every task-creating
    route, wherever the submission is refused)."""
    problem = {"loc": ["body"], "msg": str(exc), "type": "too_many_queued"}
    return JSONResponse({"detail": [problem]}, status_code=429)


def install(app: FastAPI) -> None:
    for error in STORE_ERRORS:
        app.add_exception_handler(error, store_unavailable)
    app.add_exception_handler(Unstorable, unstorable)
    app.add_exception_handler(TenantQueueFull, queue_full)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)


def key_conflict(message: str) -> JSONResponse:
    """409: an Idempotency-Key given before with another request (seed 001's `detail` list,
    naming the header)."""
    problem = {"loc": ["header", "Idempotency-Key"], "msg": message, "type": "conflict"}
    return JSONResponse({"detail": [problem]}, status_code=409)
