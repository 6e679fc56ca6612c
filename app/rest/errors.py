"""Store outages become 503 (never 500): the API process stays up and recovers by itself when
PostgreSQL or Redis come back (pooled connections are re-established on demand)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.outages import STORE_ERRORS


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    detail = (
        "LLM queue service unavailable"
        if request.url.path.startswith("/api/v1/llm")
        else "service unavailable: a backing store is unreachable"
    )
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


def install(app: FastAPI) -> None:
    for error in STORE_ERRORS:
        app.add_exception_handler(error, store_unavailable)
