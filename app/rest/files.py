"""An export's file as a download (seed 002's jobs, seed 004's metrics exports): CSV or JSON
by its suffix, under its own name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse

# the 200 answer of a download route, for its OpenAPI operation
DOWNLOADED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/json": {}}}
}


def download(path: Path) -> FileResponse:
    media = "text/csv" if path.suffix == ".csv" else "application/json"
    return FileResponse(path, media_type=media, filename=path.name)
