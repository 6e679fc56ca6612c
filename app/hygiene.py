"""One input-hygiene rule at the edge: text PostgreSQL cannot store (NUL characters, unpaired
UTF-16 surrogates, bytes that are not UTF-8) and JSON nested deeper than MAX_JSON_DEPTH are
refused as bad input naming where it was, before any handler runs: 422 with seed 001's `detail`
list for REST, BAD_USER_INPUT for GraphQL.

And one rule before anything is stored: every value written to a column fits that column, as
its SQLAlchemy type says (String(n) lengths, Integer/SmallInteger/BigInteger ranges, the
date-times the driver and PostgreSQL accept, finite floats). Every session checks the objects of
a flush and the values of its INSERT/UPDATE statements before they reach PostgreSQL, and
refuses a value that does not fit with `Unstorable` (an InvalidInput naming the field), so
both doors answer it like any other bad input: REST 422 with `loc`, GraphQL a typed error (or
BAD_USER_INPUT) naming the field. The same bounds serve values compared with a column (a job's
`since`, an event id), where PostgreSQL would refuse them just the same."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    String,
    event,
    inspect,
)
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, UOWTransaction
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.types import TypeEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.errors import InvalidInput

NUL = "must not contain NUL characters (\\u0000)"
SURROGATE = "must not contain unpaired surrogates (\\ud800-\\udfff)"
NOT_UTF8 = "must be valid UTF-8"
MAX_JSON_DEPTH = 64  # arrays and objects inside one another, in a body or a variable
TOO_DEEP = f"must not be nested more than {MAX_JSON_DEPTH} levels"


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE
    return None


def json_problems(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (path, problem) in a decoded JSON value, keys included; a value nested deeper than
    MAX_JSON_DEPTH is one problem, at the first level too deep. Iterative: no input can
    exhaust the interpreter's stack."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, path, 0)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                yield at, problem
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            yield at, TOO_DEEP
            return
        if isinstance(item, dict):
            children: list[tuple[Any, tuple[str | int, ...], int]] = []
            for key, child in item.items():
                problem = text_problem(str(key))
                if problem:
                    yield (*at, str(key).encode("utf-8", "backslashreplace").decode()), problem
                children.append((child, (*at, key), depth + 1))
        else:
            children = [(child, (*at, i), depth + 1) for i, child in enumerate(item)]
        stack.extend(reversed(children))  # in document order


def _printable(part: str | int) -> str | int:
    return part if isinstance(part, int) else part.encode("utf-8", "backslashreplace").decode()


class InputHygiene:
    """ASGI middleware for the REST shims: path, query string and JSON body."""

    def __init__(self, app: ASGIApp, *, flat_paths: frozenset[str] = frozenset()) -> None:
        """`flat_paths` answer `{"detail": "string"}` (seed 003's shape) instead of the list."""
        self.app = app
        self.flat_paths = flat_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        flat = scope["path"] in self.flat_paths
        problem = self._path_or_query(scope)
        if problem is not None:
            await _reject(send, *problem, flat=flat)
            return
        headers = dict(scope["headers"])
        if b"json" not in headers.get(b"content-type", b"") or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        found = _body_problem(body)
        if found is not None:
            await _reject(send, *found, flat=flat)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _path_or_query(self, scope: Scope) -> tuple[list[str | int], str] | None:
        problem = text_problem(scope["path"])
        if problem:
            return ["path"], problem
        raw = scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return ["query"], NOT_UTF8
        for name, value in pairs:
            problem = text_problem(name) or text_problem(value)
            if problem:
                return ["query", _printable(name)], problem  # type: ignore[list-item]
        return None


class _NotJson(ValueError):
    pass


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity; JSON has neither (and no answer could echo them)
    raise _NotJson(f"{constant} is not a JSON value")


def _body_problem(body: bytes) -> tuple[list[str | int], str] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ["body"], NOT_UTF8
    try:
        value = json.loads(text, parse_constant=_not_json)
    except _NotJson as exc:
        return ["body"], str(exc)
    except RecursionError:  # deeper than the decoder goes: far past MAX_JSON_DEPTH
        return ["body"], TOO_DEEP
    except ValueError:
        return None  # not JSON: the route's own validation says so
    for path, problem in json_problems(value):
        return ["body", *(_printable(p) for p in path)], problem
    return None


async def _reject(send: Send, loc: list[str | int], message: str, *, flat: bool = False) -> None:
    detail: Any = (
        ".".join(str(p) for p in loc) + ": " + message
        if flat
        else [{"loc": loc, "msg": message, "type": "value_error.text"}]
    )
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- what a column can hold ---------------------------------------------------------------------

INTEGER_BITS: tuple[tuple[type[TypeEngine[Any]], int], ...] = (
    (SmallInteger, 16),
    (BigInteger, 64),
    (Integer, 32),  # after its subclasses
)
# PostgreSQL keeps 4713 BC to 294276 AD; the driver sends what Python's datetime holds, as UTC
TIMESTAMP_RANGE = "must be a date-time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"


class Unstorable(InvalidInput):
    """A value its column cannot hold, named by the input field it came from."""


def integer_bounds(type_: TypeEngine[Any]) -> tuple[int, int] | None:
    for kind, bits in INTEGER_BITS:
        if isinstance(type_, kind):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return None


def timestamp_problem(value: datetime) -> str | None:
    """As the driver sends it: the instant in UTC (a naive value in the process's local time,
    as asyncpg reads it) must be one Python's datetime holds."""
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        return TIMESTAMP_RANGE
    return None


def value_problem(type_: TypeEngine[Any], value: Any) -> str | None:
    """Why a column of this type cannot hold the value (None: it can, or it is not checked)."""
    if value is None or isinstance(value, ClauseElement):
        return None
    if isinstance(type_, String):
        length = type_.length
        if length is not None and isinstance(value, str) and len(value) > length:
            return f"must be at most {length} characters"
        return None
    bounds = integer_bounds(type_)
    if bounds is not None:
        if isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
            return f"must be between {bounds[0]} and {bounds[1]}"
        return None
    if isinstance(type_, Float) and isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return "must be a finite number"
        return None
    if isinstance(type_, DateTime) and isinstance(value, datetime):
        return timestamp_problem(value)
    return None


def _checked(type_: TypeEngine[Any]) -> bool:
    return (
        (isinstance(type_, String) and type_.length is not None)
        or integer_bounds(type_) is not None
        or isinstance(type_, Float | DateTime)
    )


def field_of(column: Column[Any], mapper: Mapper[Any] | None = None) -> str:
    """The input field a column stores: `info={"field": ...}` on the column, else the mapped
    attribute's name (what services and the REST bodies call it), else the column's key."""
    named = column.info.get("field")
    if isinstance(named, str):
        return named
    if mapper is not None:
        try:
            return mapper.get_property_by_column(column).key
        except UnmappedColumnError:
            pass
    return column.key


def refuse(column: Column[Any], value: Any, mapper: Mapper[Any] | None = None) -> None:
    problem = value_problem(column.type, value)
    if problem is not None:
        field = field_of(column, mapper)
        raise Unstorable(f"{field} {problem}", field=field)


Plan = tuple[tuple[str, Column[Any], str], ...]
_PLANS: dict[Mapper[Any], Plan] = {}


def _plan(mapper: Mapper[Any]) -> Plan:
    """(attribute, column, field) for each attribute whose column bounds its values
    (computed once per class)."""
    plan = _PLANS.get(mapper)
    if plan is None:
        plan = tuple(
            (prop.key, column, field_of(column, mapper))
            for prop in mapper.column_attrs
            for column in prop.columns[:1]
            if isinstance(column, Column) and _checked(column.type)
        )
        _PLANS[mapper] = plan
    return plan


def check_objects(objects: Iterable[Any]) -> None:
    """Every bounded attribute of these ORM objects fits its column, or Unstorable."""
    for obj in objects:
        state = inspect(obj)
        values = state.dict  # what is loaded or set: never a lazy load
        for key, column, field in _plan(state.mapper):
            value = values.get(key)
            if value is None:
                continue
            problem = value_problem(column.type, value)
            if problem is not None:
                raise Unstorable(f"{field} {problem}", field=field)


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    check_objects([*session.new, *session.dirty])


def _rows(statement: Any) -> Iterator[dict[Any, Any]]:
    values = getattr(statement, "_values", None)
    if values:
        yield dict(values)
    for many in getattr(statement, "_multi_values", None) or ():
        yield from many


def _before_statement(orm: ORMExecuteState) -> None:
    """INSERT and UPDATE statements a session runs: their `.values(...)` and their
    executemany parameters."""
    if not (orm.is_insert or orm.is_update):
        return
    statement = orm.statement
    table = getattr(statement, "table", None)
    if table is None:
        return
    mapper = orm.bind_mapper
    params = orm.parameters
    rows = [*_rows(statement)]
    if isinstance(params, dict):
        rows.append(params)
    elif isinstance(params, list | tuple):
        rows.extend(p for p in params if isinstance(p, dict))
    attrs = mapper.attrs if mapper is not None else None
    for row in rows:
        for key, raw in row.items():
            value = raw.value if isinstance(raw, BindParameter) else raw
            column: Any = key
            if isinstance(key, str):
                column = table.c.get(key)
                if column is None and attrs is not None and key in attrs:
                    column = getattr(attrs[key], "columns", [None])[0]
            if isinstance(column, Column) and _checked(column.type):
                refuse(column, value, mapper)


event.listen(Session, "before_flush", _before_flush)
event.listen(Session, "do_orm_execute", _before_statement)


# --- what a tenant may read in an error ---------------------------------------------------------

_INTERNAL_TEXT = re.compile(r"\[SQL:|\[parameters:|Traceback \(most recent call last\)")
_ADDRESSES = re.compile(
    r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"  # URLs
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # IPv4 (and port)
    r"|\[[0-9a-fA-F:]*:[0-9a-fA-F:]+\](?::\d+)?"  # [IPv6] (and port)
    r"|\b(?:localhost|(?:[a-zA-Z0-9-]+\.)+[a-zA-Z][a-zA-Z0-9-]*):\d{1,5}\b"  # host:port
)


def redact_internal(text: str) -> tuple[str, bool]:
    """An error text as a tenant may read it: no SQL, parameters or traceback (the whole text
    becomes "internal error"), no URL, address or host:port (each becomes <internal>).
    Answers the text and whether anything was taken out."""
    if _INTERNAL_TEXT.search(text):
        return "internal error", True
    redacted, found = _ADDRESSES.subn("<internal>", text)
    return redacted, found > 0
