"""Query parameters and page arithmetic shared by seed 001's paginated lists."""

from __future__ import annotations

import math
from enum import StrEnum


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


def page_count(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0
