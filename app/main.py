"""create_app(): the Starlette application (GraphQL, REST shims, health) and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

from app import console
from app.config import Settings, get_settings
from app.edge.headers import ResponseHeaders
from app.edge.hygiene import InputHygiene
from app.edge.limits import BodySizeLimit
from app.edge.state import AppState, open_state
from app.gql.direct import DirectSockets
from app.gql.schema import build_schema
from app.gql.view import GraphQLEndpoint
from app.metrics import metrics
from app.platform import clock
from app.rest import (
    access,
    ai_audit,
    ai_monitoring,
    dlq,
    errors,
    jobs,
    llm_queue,
    llm_server,
    monitoring,
    params,
    pipeline,
    schedules,
    workflows,
)
from app.rest.methods import MethodGuard


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state: AppState = request.scope["state"]["app"]
    checks: dict[str, str] = {}
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unreachable: {type(exc).__name__}"
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "Not Found", "code": "not_found"}, status_code=404)


def create_rest_app(settings: Settings) -> FastAPI:
    rest = FastAPI(
        title="opsgraph REST shims",
        version="0.1.0",
        description="The paths of the five seed API documents, served over opsgraph's services.",
        openapi_url="/openapi.json",
        # Swagger UI loads from a CDN: nothing a user runs does (the document is /openapi.json)
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(params.known_query_only)],
    )
    # /monitoring/workflows/stats must be matched before /monitoring/workflows/{id}
    rest.include_router(access.declared(errors.document_statuses(workflows.router)))
    # seed 004's /monitoring paths live beside seed 001's
    for router in ai_monitoring.routers:
        rest.include_router(access.declared(errors.document_statuses(router)))
    rest.include_router(access.declared(errors.document_statuses(monitoring.router)))
    rest.include_router(access.declared(errors.document_statuses(llm_queue.router)))
    rest.include_router(access.declared(errors.document_statuses(llm_server.router)))
    for router in pipeline.routers:
        rest.include_router(access.declared(errors.document_statuses(router)))
    rest.include_router(access.declared(errors.document_statuses(dlq.router)))
    rest.include_router(access.declared(errors.document_statuses(jobs.router)))
    rest.include_router(access.declared(errors.document_statuses(schedules.router)))
    for router in ai_audit.routers:
        rest.include_router(access.declared(errors.document_statuses(router)))
    rest.include_router(access.declared(errors.document_statuses(dlq.system)))
    errors.install(rest)
    return rest


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or get_settings()
    clock.configure(settings.monitoring_clock_file)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_state(settings) as state:
            yield {"app": state}

    graphql = GraphQLEndpoint(build_schema(settings), settings, ide_html=console.graphiql_html)
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *console.routes(),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Mount(
                "",
                app=InputHygiene(
                    MethodGuard(create_rest_app(settings)), flat_paths=errors.FLAT_DETAIL_PATHS
                ),
            ),
        ],
        lifespan=lifespan,
        # a path no route can match (the mount's pattern does not cross a newline) is still
        # answered in JSON, like every other 404
        exception_handlers={404: not_found},
    )
    # outermost: websocket connections' own send is visible only here (see app/gql/direct.py);
    # the response headers wrap everything else, so a 413 or a 404 carries them too
    return DirectSockets(ResponseHeaders(BodySizeLimit(app, max_bytes=settings.max_body_bytes)))
