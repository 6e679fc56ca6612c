"""The live ops console at /console and GraphiQL's page, both served from files inside the
package (app/console/static; third-party code under vendor/, pinned by
scripts/vendor_console.py), so nothing is fetched from a CDN. The console is a client of
/graphql only: it has no endpoint of its own."""

from __future__ import annotations

from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

# The page may load and connect to its own origin only (a stray CDN reference fails loudly in
# the browser instead of working online and hanging offline).
CONSOLE_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:;"
    " style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
)


async def console_page(request: Request) -> Response:
    return FileResponse(
        STATIC / "console.html",
        headers={"Content-Security-Policy": CONSOLE_POLICY, "Cache-Control": "no-cache"},
    )


def graphiql_html() -> str:
    return (STATIC / "graphiql.html").read_text()


def routes() -> list[BaseRoute]:
    return [
        Route("/console", console_page),
        # assets are compressed on the wire (the first load's budget is measured compressed)
        Mount(
            "/console/assets",
            app=GZipMiddleware(StaticFiles(directory=STATIC), minimum_size=1024),
            name="console-assets",
        ),
    ]
