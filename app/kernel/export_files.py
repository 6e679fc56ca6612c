"""Export files both kinds of export write: each attempt writes a file of its own and renames
it into place when complete (two attempts of one job at once, which at-least-once execution
allows, never mix their rows, and a download never sees a half-written file); CSV cells are
safe to open in a spreadsheet."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

# OWASP's CSV injection list: a cell starting with one of these is a formula to a spreadsheet
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def attempt_file(path: Path) -> Path:
    """A temporary name beside `path`, unique to this attempt (hidden from listings)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")


def csv_safe(value: Any) -> Any:
    """Text that a spreadsheet would run is prefixed with a quote; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
