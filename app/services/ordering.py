"""ORDER BY for list endpoints: nulls last where a column can be null, plain order where it
cannot (so an index on the column serves the sort), and the id as the tiebreaker."""

from __future__ import annotations

from typing import Any


def order_by(column: Any, tiebreak: Any, *, descending: bool) -> tuple[Any, Any]:
    nullable = True
    prop = getattr(column, "property", None)
    if prop is not None and getattr(prop, "columns", None):
        nullable = bool(prop.columns[0].nullable)
    ordered = column.desc() if descending else column.asc()
    if nullable:
        ordered = ordered.nulls_last()
    return ordered, (tiebreak.desc() if descending else tiebreak.asc())
