"""Domain errors at the GraphQL door, mapped in one place.

A mutation's expected failure is data: its payload's `errors`, each of the payload's error type
(`field`, `code`, `message`), whose `code` is an enum per mutation family or free text (its
success: the payload's object, and no errors). A
query's is a GraphQL error with a code clients branch on (BAD_USER_INPUT, NOT_FOUND); for one
object asked for by its id, null when there is none (app/gql/reads.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol, TypeVar, cast

from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.types.field import StrawberryField

from app.gql.context import Info
from app.kernel.errors import DomainError, InvalidInput, NotFound

E = TypeVar("E")
P = TypeVar("P")
R = TypeVar("R")


def user_error(message: str, code: str = "BAD_USER_INPUT", **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def raised(exc: DomainError) -> GraphQLError:
    """A domain error a query answers as a GraphQL error naming its field: NOT_FOUND for a
    NotFound, BAD_USER_INPUT for anything else."""
    code = "NOT_FOUND" if isinstance(exc, NotFound) else "BAD_USER_INPUT"
    return user_error(exc.message, code, field=exc.field)


def _codes(kind: type) -> type[Enum] | None:
    """The enum of an error type's `code` (None: free text)."""
    code = get_object_definition(kind, strict=True).get_field("code")
    field_type = code.type if code is not None else None
    if isinstance(field_type, StrawberryEnumDefinition):
        return cast(type[Enum], field_type.wrapped_cls)
    return None


class Failure(Protocol):
    """What went wrong and where: a domain error, or one item of a refused batch."""

    @property
    def field(self) -> str | None: ...

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...


def _code(codes: type[Enum], exc: Failure) -> Enum:
    known = {c.value for c in codes}
    if exc.code in known:
        return codes(exc.code)
    if isinstance(exc, NotFound) and "NOT_FOUND" in known:
        return codes("NOT_FOUND")
    return codes("INVALID")


def error_of(kind: type[E], exc: Failure, *, code: str | None = None, **more: Any) -> E:
    """`exc` as an error of type `kind` (its `field`, `code` and `message`, and `more`). An
    enum code is the error's own when the enum has it, else NOT_FOUND for a NotFound (when the
    enum has it), else INVALID; a text code is the error's own, or `code`."""
    codes = _codes(kind)
    value = _code(codes, exc) if codes is not None else code or exc.code
    error: E = cast(Any, kind)(field=exc.field, code=value, message=exc.message, **more)
    return error


def errors_of(kind: type[E], exc: Failure, *, code: str | None = None) -> list[E]:
    """`exc` as the errors of a payload whose error type is `kind` (see `error_of`)."""
    return [error_of(kind, exc, code=code)]


def _error_type(payload: type) -> type:
    errors = get_object_definition(payload, strict=True).get_field("errors")
    if errors is None or not isinstance(errors.type, StrawberryList):
        raise TypeError(f"{payload.__name__} has no `errors` list")
    return cast(type, errors.type.of_type)


def _empty(field: StrawberryField) -> Any:
    """What a failed mutation's payload answers besides its errors: null, [], 0 or false."""
    empty: dict[Any, Any] = {int: 0, float: 0.0, bool: False}
    if isinstance(field.type, StrawberryOptional):
        return None
    if isinstance(field.type, StrawberryList):
        return []
    if field.type in empty:
        return empty[field.type]
    raise TypeError(f"a failed payload has nothing to answer in {field.python_name}")


def _empties(payload: type) -> dict[str, Any]:
    fields = get_object_definition(payload, strict=True).fields
    return {f.python_name: _empty(f) for f in fields if f.python_name != "errors"}


def failure(payload: type[P], exc: DomainError) -> P:
    """The payload of a mutation that failed with `exc`: its errors, every other field empty."""
    errors: list[Any] = errors_of(_error_type(payload), exc)
    failed: P = cast(Any, payload)(errors=errors, **_empties(payload))
    return failed


def success(payload: type[P], value: object) -> P:
    """The payload of a mutation that succeeded with `value`: its one field besides `errors`."""
    (field,) = _empties(payload)
    done: P = cast(Any, payload)(errors=[], **{field: value})
    return done


async def acted(
    info: Info,
    action: Callable[..., Awaitable[R]],
    payload: type[P],
    node: Callable[[R], object],
    /,
    **arguments: Any,
) -> P:
    """A service's action on one object, in the caller's tenant (`Context.act`), answered as
    `payload` with the object shaped by `node`."""
    return success(payload, node(await info.context.act(action, **arguments)))


class CaptureErrors(FieldExtension):
    """A domain error the resolver raises becomes its payload's `errors` (`failure`), as
    dagster-graphql's `capture_error` does: a mutation states only its way to success."""

    payload: type

    def apply(self, field: StrawberryField) -> None:
        payload = field.type
        if not isinstance(payload, type):
            raise TypeError(f"{field.python_name} does not answer a payload type")
        # a payload without `errors`, or that could not answer empty, fails the schema's build
        _error_type(payload)
        _empties(payload)
        self.payload = payload

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except DomainError as exc:
            return failure(self.payload, exc)


def json_object(value: object, field: str) -> dict[str, object]:
    """A JSON argument that must be an object (`{}` when left out)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", field=field)
    return value
