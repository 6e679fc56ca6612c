"""The GraphQL door's shared pieces, each through a small schema of its own: a type built from a
row's columns (`forward`), the four Relay arguments declared once (`Paged`), and a domain error
answered as its payload's typed errors (`CaptureErrors`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

import strawberry

from app.gql.errors import CaptureErrors, errors_of
from app.gql.forward import Forwards, forward
from app.gql.pagination import Paged, Slice
from app.kernel.errors import DomainError, InvalidInput, InvalidTransition, NotFound


@strawberry.enum
class Color(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.enum
class ThingErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"


@strawberry.type
class ThingError:
    field: str | None
    code: ThingErrorCode
    message: str


@strawberry.type
class NoteError:
    field: str | None
    code: str
    message: str


@strawberry.type
class Thing(Forwards):
    id: strawberry.ID
    color: Color
    shade: Color | None
    name: str


@strawberry.type
class ThingPayload:
    thing: Thing | None
    count: int
    errors: list[ThingError]


@dataclass
class Row:
    id: uuid.UUID
    color: str
    shade: str | None
    name: str
    secret: str = "not a field of Thing"


ROW = Row(uuid.UUID(int=7), "red", None, "seven")
WANTED: dict[str, DomainError | None] = {"error": None}


@strawberry.type
class Query:
    @strawberry.field(extensions=[Paged()])
    async def things(self, window: Slice, filter: str | None = None) -> str:
        return f"{window} {filter}"


@strawberry.type
class Mutation:
    @strawberry.mutation(extensions=[CaptureErrors()])
    async def paint(self) -> ThingPayload:
        error = WANTED["error"]
        if error is not None:
            raise error
        return ThingPayload(thing=Thing.of(ROW), count=1, errors=[])


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)


def test_a_type_reads_its_fields_off_a_row_by_name() -> None:
    thing = Thing.of(ROW)
    assert thing == Thing(id=strawberry.ID(str(ROW.id)), color=Color.RED, shade=None, name="seven")
    renamed = forward(Thing, ROW, name="renamed", shade=Color.BLUE)
    assert (renamed.name, renamed.shade, renamed.color) == ("renamed", Color.BLUE, Color.RED)


async def test_a_list_takes_the_four_relay_arguments_first_as_one_window() -> None:
    sdl = SCHEMA.as_str()
    assert (
        "things(first: Int = null, after: String = null, last: Int = null,"
        " before: String = null, filter: String = null): String!"
    ) in sdl
    result = await SCHEMA.execute('{ things(last: 2, before: "b", filter: "f") }')
    assert result.errors is None
    assert result.data == {"things": f"{Slice(None, None, 2, 'b')} f"}


async def test_a_domain_error_is_the_payloads_errors_with_every_other_field_empty() -> None:
    answers: dict[str, Any] = {}
    for name, error in (
        ("ok", None),
        ("gone", NotFound("no such thing", field="id", code="thing_not_found")),
        ("refused", InvalidTransition("already painted")),
    ):
        WANTED["error"] = error
        result = await SCHEMA.execute("mutation { paint { thing { name } count errors { code } } }")
        assert result.errors is None
        answers[name] = result.data
    assert answers == {
        "ok": {"paint": {"thing": {"name": "seven"}, "count": 1, "errors": []}},
        # a NotFound of its own code is NOT_FOUND; a code the enum lacks is INVALID
        "gone": {"paint": {"thing": None, "count": 0, "errors": [{"code": "NOT_FOUND"}]}},
        "refused": {"paint": {"thing": None, "count": 0, "errors": [{"code": "INVALID"}]}},
    }


def test_a_free_text_code_is_the_errors_own_unless_given() -> None:
    exc = InvalidInput("too many", field="logs", code="payload_too_large")
    assert errors_of(NoteError, exc) == [
        NoteError(field="logs", code="payload_too_large", message="too many")
    ]
    assert errors_of(NoteError, exc, code="INVALID")[0].code == "INVALID"
