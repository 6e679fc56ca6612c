"""Seed 004's error bodies: `{"detail": message, "code": code}` with the seed's codes; invalid
input keeps seed 001's 422 `detail` list naming the field."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.kernel.errors import DomainError, NotFound
from app.services.agents.controls import AlreadyPaused
from app.services.agents.registry import AgentIdTaken
from app.services.monitoring.alerts import AlertAlreadyResolved
from app.services.monitoring.exports import ExportNotReady
from app.services.monitoring.logs import TooManyEntries
from app.services.monitoring.rules import InvalidMetric


class CodedProblem(BaseModel):
    detail: str
    code: str


def coded(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": message, "code": code}, status_code=status)


def documented(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": CodedProblem, "description": code} for status, code in pairs}


def invalid(field: str | None, message: str, *, where: str = "body") -> JSONResponse:
    loc: list[str | int] = [where]
    for part in (field or where).replace("[", ".").replace("]", "").split("."):
        if part and part != where:
            loc.append(int(part) if part.isdigit() else part)
    return JSONResponse(
        {"detail": [{"loc": loc, "msg": message, "type": "value_error"}]}, status_code=422
    )


QUERY_FIELDS = {"period", "granularity", "limit", "level", "status", "severity"}


def fail(exc: DomainError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return coded(404, exc.code, exc.message)
    if isinstance(exc, AlreadyPaused | AlertAlreadyResolved | ExportNotReady | AgentIdTaken):
        return coded(409, exc.code, exc.message)
    if isinstance(exc, InvalidMetric):
        return coded(400, "invalid_metric", exc.message)
    if isinstance(exc, TooManyEntries):
        return coded(413, "payload_too_large", exc.message)
    where = "query" if exc.field in QUERY_FIELDS else "body"
    return invalid(exc.field, exc.message, where=where)
