"""The task types workers registered in PostgreSQL, as submissions see them.

Workers write their types to `task_type_definitions` (app/services/tasks/registry.py); the
API never imports a user's code, so it validates a submission's input against the registered
JSON Schema. Each process keeps the newest definition of every name in memory, read again
when a submission names a type it does not know and at most `MAX_AGE_SECONDS` after the last
read (a rolling deploy's new schema is obeyed within that), and compiles each schema once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fastjsonschema
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import TaskTypeDefinition
from app.kernel.errors import InvalidInput

MAX_AGE_SECONDS = 5.0

OpenSession = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class Registered:
    """The newest definition of one user task type."""

    name: str
    definition_hash: str
    queue: str
    description: str | None
    input_schema: dict[str, Any]
    retries: int | None
    timeout_seconds: float | None
    first_registered_at: datetime
    # {"key": <input field or dotted path>, "limit": n}, or None
    concurrency: dict[str, Any] | None = None
    # {"limit": "10/s", "key": "input.domain" or None}, or None
    rate: dict[str, Any] | None = None


class Catalog:
    def __init__(self) -> None:
        self._types: dict[str, Registered] = {}
        self._validators: dict[str, Callable[[Any], Any]] = {}
        self._read_at = float("-inf")
        # one read at a time per event loop (a process may run several one after the other)
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def get(self, name: str) -> Registered | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def invalidate(self) -> None:
        """A worker registered types: the next submission reads the registry again."""
        self._read_at = float("-inf")

    def stale(self, names: Iterable[str]) -> bool:
        if time.monotonic() - self._read_at > MAX_AGE_SECONDS:
            return True
        return any(n not in self._types for n in names)

    async def ensure(self, names: Iterable[str], open_session: OpenSession) -> None:
        """Read the registry again if one of `names` is unknown here or the copy is old."""
        wanted = [n for n in names if n]
        if not self.stale(wanted):
            return
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        if loop not in self._locks:
            self._locks = {loop: asyncio.Lock()}  # a finished loop's lock is dropped
        async with self._locks[loop]:
            if self._read_at >= started:  # another caller read it meanwhile
                return
            async with open_session() as session:
                await self.read(session)

    async def read(self, session: AsyncSession) -> None:
        read_at = time.monotonic()
        rows = (
            await session.execute(
                select(TaskTypeDefinition)
                .where(TaskTypeDefinition.builtin.is_(False))
                .order_by(TaskTypeDefinition.first_registered_at, TaskTypeDefinition.name)
            )
        ).scalars()
        types: dict[str, Registered] = {}
        for r in rows:  # oldest first: the newest definition of a name wins
            types[r.name] = Registered(
                name=r.name,
                definition_hash=r.definition_hash,
                queue=r.queue,
                description=r.description,
                input_schema=r.input_schema,
                retries=r.retries,
                timeout_seconds=r.timeout_seconds,
                first_registered_at=r.first_registered_at,
                concurrency=r.concurrency,
                rate=r.rate,
            )
        self._types = types
        self._read_at = read_at

    def check_input(self, registered: Registered, data: Any, *, field: str = "input") -> None:
        """Refuse an input its type's schema refuses, naming the offending field."""
        validator = self._validators.get(registered.definition_hash)
        if validator is None:
            # the input is stored as submitted: no defaults filled in
            validator = fastjsonschema.compile(registered.input_schema, use_default=False)
            self._validators[registered.definition_hash] = validator
        try:
            validator(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise InvalidInput(
                f"{registered.name}: {_message(exc, field)}", field=_field(exc, field)
            ) from None


def _field(exc: fastjsonschema.JsonSchemaValueException, root: str) -> str:
    """`data.width` as the field a client sent: input.width (a missing property: its name)."""
    path = [str(p) for p in (exc.path or [])][1:]
    if exc.rule == "required" and isinstance(exc.rule_definition, list):
        missing = _missing(exc)
        if missing:
            path.append(missing)
    return ".".join([root, *path])


def _missing(exc: fastjsonschema.JsonSchemaValueException) -> str | None:
    # fastjsonschema says "data must contain ['url'] properties": find which one is absent
    value = exc.value if isinstance(exc.value, dict) else {}
    for name in exc.rule_definition or []:
        if name not in value:
            return str(name)
    return None


def _message(exc: fastjsonschema.JsonSchemaValueException, root: str) -> str:
    text = exc.message
    return root + text[4:] if text.startswith("data") else text


# This process's copy (the API's, a worker's for ctx.submit).
CATALOG = Catalog()
