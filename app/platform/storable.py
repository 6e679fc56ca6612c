"""One rule before anything is stored: every value written to a column fits that column, as
its SQLAlchemy type says (String(n) lengths, Integer/SmallInteger/BigInteger ranges, the
date-times the driver and PostgreSQL accept, finite floats). Every session checks the objects of
a flush and the values of its INSERT/UPDATE statements before they reach PostgreSQL, and
refuses a value that does not fit with `Unstorable` (an InvalidInput naming the field), so
both doors answer it like any other bad input: REST 422 with `loc`, GraphQL a typed error (or
BAD_USER_INPUT) naming the field. The same bounds serve values compared with a column (a job's
`since`, an event id), where PostgreSQL would refuse them just the same."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

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

from app.kernel.errors import InvalidInput

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
