"""The live ops console at /console and GraphiQL's page, both served from files inside the
package (app/console/static; third-party code under vendor/, pinned by
scripts/vendor_console.py), so nothing is fetched from a CDN. The console is a client of
/graphql; its one route of its own, POST /console/session, turns the dev banner's one-time
code into a token (app/console/codes.py). Every page's security headers come from
app/edge/headers.py, which sets them on every HTML response."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.console import codes

STATIC = Path(__file__).resolve().parent / "static"

# What the asset mount serves: scripts, styles and plain text (licences, the manifest). A page
# is served only at its own route, with the page headers; an HTML file under the mount would be
# the whole console at a second address.
ASSET_TYPES = frozenset(
    {"text/css", "text/javascript", "application/javascript", "application/json", "text/plain"}
)


class Assets(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        # the type FileResponse would send (unknown endings go out as text/plain)
        media_type = mimetypes.guess_type(str(full_path))[0] or "text/plain"
        if media_type not in ASSET_TYPES:
            raise HTTPException(status_code=404)
        return super().file_response(full_path, stat_result, scope, status_code)


async def console_page(request: Request) -> Response:
    return FileResponse(STATIC / "console.html", headers={"Cache-Control": "no-cache"})


def graphiql_html() -> str:
    return (STATIC / "graphiql.html").read_text()


def routes() -> list[BaseRoute]:
    return [
        Route("/console", console_page),
        Route("/console/session", codes.exchange, methods=["POST"]),
        # assets are compressed on the wire (the first load's budget is measured compressed)
        Mount(
            "/console/assets",
            app=GZipMiddleware(Assets(directory=STATIC), minimum_size=1024),
            name="console-assets",
        ),
    ]
