"""Connection paging shared by every list: offset cursors, page-size bounds, page info.

Cursors are opaque (base64 of an offset): stable for a fixed filter and order, cheap for the
first pages that dashboards read."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

import strawberry
from graphql import GraphQLError

from app.gql.context import Info

T = TypeVar("T")


@strawberry.enum
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise GraphQLError(f"invalid cursor {cursor!r}", extensions={"code": "BAD_USER_INPUT"})


@dataclass(frozen=True)
class Window:
    limit: int
    offset: int

    @classmethod
    def of(cls, info: Info, first: int, after: str | None) -> Window:
        cap = info.context.state.settings.page_size_max
        if not 1 <= first <= cap:
            raise GraphQLError(
                f"first must be between 1 and {cap}", extensions={"code": "BAD_USER_INPUT"}
            )
        return cls(limit=first, offset=decode_cursor(after) + 1 if after else 0)

    @property
    def fetch(self) -> int:
        """Rows to ask for: one more than the page tells whether another page follows."""
        return self.limit + 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[tuple[T, str]]  # (row, cursor)
    info: PageInfo


def page(rows: Sequence[T], window: Window) -> Page[T]:
    items = [(r, encode_cursor(window.offset + i)) for i, r in enumerate(rows[: window.limit])]
    return Page(
        items=items,
        info=PageInfo(
            has_next_page=len(rows) > window.limit,
            has_previous_page=window.offset > 0,
            start_cursor=items[0][1] if items else None,
            end_cursor=items[-1][1] if items else None,
        ),
    )
