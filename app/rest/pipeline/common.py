"""What seed 002's pipeline routes share: ids, the not-found answer, the section's tag."""

from __future__ import annotations

from typing import Any

from app.rest.params import RowIdPath

TAG = "AI Pipeline"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id"}}
DbId = RowIdPath
