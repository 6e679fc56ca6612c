"""Seed 004's error bodies: `{"detail": message, "code": code}` with the seed's codes; invalid
input keeps seed 001's 422 `detail` list naming the field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.rest.refusals import Refusals
from app.services.agents.controls import AlreadyPaused
from app.services.agents.registry import AgentIdTaken
from app.services.monitoring.alerts import AlertAlreadyResolved
from app.services.monitoring.exports import ExportNotReady
from app.services.monitoring.logs import TooManyEntries
from app.services.monitoring.rules import InvalidMetric


class CodedProblem(BaseModel):
    detail: str
    code: str


def documented(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": CodedProblem, "description": code} for status, code in pairs}


fail = Refusals(
    {
        AlreadyPaused: 409,
        AlertAlreadyResolved: 409,
        ExportNotReady: 409,
        AgentIdTaken: 409,
        InvalidMetric: 400,
        TooManyEntries: 413,
    },
    query_fields=frozenset({"period", "granularity", "limit", "level", "status", "severity"}),
    coded=True,
    codes={InvalidMetric: "invalid_metric", TooManyEntries: "payload_too_large"},
    nested=True,
)
