"""Durations as every view reports them: milliseconds from start to completion, or null."""

from __future__ import annotations

from datetime import datetime


def duration_ms(started: datetime | None, completed: datetime | None) -> float | None:
    if started is None or completed is None:
        return None
    return round((completed - started).total_seconds() * 1000, 3)
