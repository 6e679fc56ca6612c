"""The monitoring clock: agents, alerts, logs and metrics read the time here. It is the wall
clock unless OPSGRAPH_MONITORING_CLOCK_FILE names a file holding seconds to add, read again
whenever it changes; every process given the same file moves together, so a rule's "for"
clause of minutes can be exercised (tests, demos) without waiting minutes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

_file: Path | None = None
_stamp: tuple[int, int] | None = None
_offset = timedelta(0)


def configure(offset_file: Path | None) -> None:
    global _file, _stamp, _offset
    _file, _stamp, _offset = offset_file, None, timedelta(0)


def _current_offset() -> timedelta:
    global _stamp, _offset
    if _file is None:
        return _offset
    try:
        st = os.stat(_file)
    except OSError:
        return timedelta(0)
    stamp = (st.st_mtime_ns, st.st_size)
    if stamp != _stamp:
        try:
            _offset = timedelta(seconds=float(_file.read_text().strip() or 0))
        except (OSError, ValueError):
            _offset = timedelta(0)
        _stamp = stamp
    return _offset


def now() -> datetime:
    return datetime.now(UTC) + _current_offset()
