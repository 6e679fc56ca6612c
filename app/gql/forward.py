"""Objects built from another object's attributes of the same names, so a GraphQL type that
shows a row's columns declares them once, as its fields: `Batch.of(row)` reads each field off
the row. The same serves a GraphQL input turned into a service's input
(`forward(queries.BatchFilter, self, status=...)`).

A field's type says what a column becomes: a column holding an enum's value becomes that
enum, an id becomes an `ID`; every other value is taken as it is. What differs (a renamed or
computed field) is passed by name and taken as given. A field the source lacks keeps its
default, and without a default the constructor refuses it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum
from typing import Any, Self, TypeVar, cast

import strawberry
from strawberry.types.base import StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition

T = TypeVar("T")

_ABSENT = object()


def _enum(kind: type[Enum]) -> Callable[[Any], Any]:
    return lambda value: value if value is None or isinstance(value, kind) else kind(value)


def _id(value: Any) -> Any:
    return None if value is None else strawberry.ID(str(value))


def _converter(field_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(field_type, StrawberryOptional):
        field_type = field_type.of_type
    if isinstance(field_type, StrawberryEnumDefinition):
        return _enum(cast(type[Enum], field_type.wrapped_cls))
    if field_type is strawberry.ID:
        return _id
    return None


Plan = tuple[tuple[str, Callable[[Any], Any] | None], ...]
_plans: dict[type, Plan] = {}


def _plan(cls: type) -> Plan:
    """The fields a constructor takes (not those a resolver computes), each with what turns a
    source's value into the field's."""
    plan = _plans.get(cls)
    if plan is None:
        definition = get_object_definition(cls)
        types = {f.python_name: f.type for f in definition.fields} if definition else {}
        fields = [f for f in dataclasses.fields(cls) if f.init]
        plan = _plans[cls] = tuple((f.name, _converter(types.get(f.name))) for f in fields)
    return plan


def forward(cls: type[T], source: object, /, **given: Any) -> T:
    """A `cls` whose fields are `source`'s attributes of the same names, except those `given`."""
    values = dict(given)
    for name, convert in _plan(cls):
        if name in values:
            continue
        value = getattr(source, name, _ABSENT)
        if value is _ABSENT:
            continue  # the field's default, or the constructor names what is missing
        values[name] = value if convert is None else convert(value)
    made: T = cast(Any, cls)(**values)
    return made


class Forwards:
    """A GraphQL type whose fields are all its source's attributes (`Type.of(row)`); a type that
    renames or computes some writes its own `of`, passing those to `forward`."""

    @classmethod
    def of(cls, source: Any) -> Self:
        return forward(cls, source)
