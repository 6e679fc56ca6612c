"""How a domain error answers at the REST door, declared once per seed document (`Refusals`),
and the sessions a route acts in (`reading`, `writing`), whose domain errors answer so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.state import AppState
from app.edge.uow import read_only, unit_of_work
from app.kernel.errors import DomainError, NotFound
from app.services.tasks.submissions import TenantQueueFull


class Coded(HTTPException):
    """Seed 004's error body: `{"detail": message, "code": code}` (app/rest/errors.py)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code, message)
        self.code = code


@dataclass(frozen=True)
class Refusals:
    """One seed's answers to domain errors: `statuses` gives an error class its status (an
    unknown id is 404 in every seed); any other error is the 422 of invalid input, its `loc`
    naming the field in the query when it is one of `query_fields`, else in the body (`nested`:
    'logs[2].message' as ['body', 'logs', 2, 'message']; else as one name). `coded` answers
    with seed 004's code beside the message: the error's own, or the one `codes` gives its
    class. `message` is the one message of every refusal where the seed writes its own words.
    With `invalid_input` off, an error no status is given for is raised as it is. `renamed`
    spells a field's first part as this door's body does (the services name fields as
    GraphQL does: `taskType` → `task_type`)."""

    statuses: Mapping[type[DomainError], int] = field(default_factory=dict)
    query_fields: frozenset[str] = frozenset()
    coded: bool = False
    codes: Mapping[type[DomainError], str] = field(default_factory=dict)
    nested: bool = False
    invalid_input: bool = True
    message: str | None = None
    renamed: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, exc: DomainError) -> Exception:
        if isinstance(exc, TenantQueueFull):
            return exc  # every door's 429 (app/rest/errors.py)
        message = self.message or exc.message
        statuses: dict[type[DomainError], int] = {NotFound: 404, **self.statuses}
        for kind, status in statuses.items():
            if isinstance(exc, kind):
                if not self.coded:
                    return HTTPException(status, message)
                code = next((c for k, c in self.codes.items() if isinstance(exc, k)), exc.code)
                return Coded(status, code, message)
        if not self.invalid_input:
            return exc
        name = self._renamed(exc.field)
        where = "query" if name in self.query_fields else "body"
        loc = _nested(name, where) if self.nested else [where, name or where]
        return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])

    def _renamed(self, name: str | None) -> str | None:
        if not name or not self.renamed:
            return name
        head, dot, rest = name.partition(".")
        return self.renamed.get(head, head) + dot + rest


def _nested(field: str | None, where: str) -> list[str | int]:
    loc: list[str | int] = [where]
    for part in (field or where).replace("[", ".").replace("]", "").split("."):
        if part and part != where:
            loc.append(int(part) if part.isdigit() else part)
    return loc


# routes whose one refusal is an unknown id or name (404 with the service's message)
not_found_only = Refusals(invalid_input=False)
# an unknown task, in seeds 000 and 001's words
task_not_found = Refusals(invalid_input=False, message="Task not found")

Refuse = Callable[[DomainError], Exception]


def reading(state: AppState, refuse: Refuse) -> AbstractAsyncContextManager[AsyncSession]:
    """A read-only session; a domain error raised in it answers as `refuse` says."""
    return _refusing(read_only(state.sessionmaker), refuse)


def writing(state: AppState, refuse: Refuse) -> AbstractAsyncContextManager[AsyncSession]:
    """A unit of work (rolled back by a domain error, which answers as `refuse` says)."""
    return _refusing(unit_of_work(state.sessionmaker, state.redis), refuse)


@asynccontextmanager
async def _refusing(
    unit: AbstractAsyncContextManager[AsyncSession], refuse: Refuse
) -> AsyncIterator[AsyncSession]:
    try:
        async with unit as session:
            yield session
    except DomainError as exc:
        raise refuse(exc) from None
