"""Answers built from a row's attributes of the same names, so a response model that shows a
row's columns declares them once, as its fields (as app/gql/forward.py does for GraphQL's
types). What differs (a renamed, converted or computed field) is passed by name and taken as
given; a field the row lacks and nothing gives is an error, never a silent default."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def shaped(model: type[M], row: object, **given: Any) -> M:
    """`model` with each field read off `row`, or taken from `given`."""
    unknown = given.keys() - model.model_fields.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    return model(
        **{
            name: given[name] if name in given else getattr(row, name)
            for name in model.model_fields
        }
    )


def columns(row: object, *names: str) -> dict[str, Any]:
    """The named attributes of `row`, in that order: a dict answer's plain columns."""
    return {name: getattr(row, name) for name in names}
