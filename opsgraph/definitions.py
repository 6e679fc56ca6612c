"""Task types: the `task` decorator and the registry a worker loads its handlers from
(opsgraph's public API is `task` and `TaskType`; the registry itself is the worker's)."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["NAME_PATTERN", "Concurrency", "TaskType", "defined", "task"]

#: letters, digits, `_`, `-` and `.`, at most 100 characters (`images.resize`, `GENERATION`)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

F = TypeVar("F", bound=Callable[..., Any])


#: how many tasks may start per second, minute or hour: "10/s", "600/m", "5000/h"
RATE_PATTERN = re.compile(r"^([1-9][0-9]{0,5})/([smh])$")
#: an input field's name, or a dotted path into the input (`customer.id`)
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$")


@dataclass(frozen=True)
class Concurrency:
    """At most `limit` tasks of this type with the same value of the input field `key` run at
    once across the fleet (within a tenant); the others wait in their queue, holding no worker
    slot: `Concurrency(key="customer_id", limit=2)`."""

    key: str
    limit: int


@dataclass(frozen=True)
class TaskType:
    """One task type: what a worker registers in PostgreSQL and runs."""

    name: str
    handler: Callable[..., Any]
    queue: str = "default"
    input: type[BaseModel] | None = None
    retries: int | None = None
    timeout: float | None = None
    description: str | None = None
    concurrency: Concurrency | None = None
    # at most n start per window ("10/s"), counted per value of `rate_key` (an input path)
    rate_limit: str | None = None
    rate_key: str | None = None
    # opsgraph's own types: a handler of the worker's own signature, operations it accepts
    builtin: bool = False
    operations: tuple[str, ...] = ()
    module: str = field(default="", compare=False)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def input_schema(self) -> dict[str, Any]:
        """The input's JSON Schema (any JSON object when the type declares no model)."""
        if self.input is None:
            return {"type": "object"}
        return self.input.model_json_schema()

    def definition(self) -> dict[str, Any]:
        """What the registry stores and hashes: everything a submitter relies on (a
        concurrency only when declared: the hashes of types without one stay as they were)."""
        out: dict[str, Any] = {
            "name": self.name,
            "queue": self.queue,
            "input_schema": self.input_schema(),
            "retries": self.retries,
            "timeout": self.timeout,
            "description": self.description,
            "builtin": self.builtin,
        }
        if self.concurrency is not None:
            out["concurrency"] = {"key": self.concurrency.key, "limit": self.concurrency.limit}
        if self.rate_limit is not None:
            out["rate"] = {"limit": self.rate_limit, "key": self.rate_key}
        return out

    def definition_hash(self) -> str:
        raw = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


class DefinitionError(ValueError):
    """A task type that cannot be defined (bad name or options, or a name taken)."""


_REGISTRY: dict[str, TaskType] = {}


def defined() -> dict[str, TaskType]:
    """Every task type defined in this process so far, by name."""
    return dict(_REGISTRY)


def lookup(name: str) -> TaskType | None:
    """The task type of this name defined in this process, if any."""
    return _REGISTRY.get(name)


def register(definition: TaskType) -> TaskType:
    """Add a definition; a name is defined once (re-importing the same module is harmless)."""
    existing = _REGISTRY.get(definition.name)
    if existing is not None:
        same_code = existing.module == definition.module and existing.handler.__qualname__ == (
            definition.handler.__qualname__
        )
        if existing.builtin or not same_code:
            whose = "opsgraph's own" if existing.builtin else f"defined in {existing.module}"
            raise DefinitionError(
                f"task type {definition.name!r} is {whose} and cannot be redefined"
            )
    _REGISTRY[definition.name] = definition
    return definition


def _check(name: str, queue: str, retries: int | None, timeout: float | None) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DefinitionError(
            f"task type name {name!r}: use 1-100 letters, digits, '_', '-' or '.'"
        )
    if not QUEUE_PATTERN.match(queue):
        raise DefinitionError(f"task type {name!r}: queue must be 1-64 of A-Z a-z 0-9 _ . : -")
    if retries is not None and not 0 <= retries <= 20:
        raise DefinitionError(f"task type {name!r}: retries must be 0-20")
    if timeout is not None and not 0 < timeout <= 86_400:
        raise DefinitionError(f"task type {name!r}: timeout must be 0-86400 seconds")


def task(
    name: str,
    *,
    queue: str = "default",
    input: type[BaseModel] | None = None,
    retries: int | None = None,
    timeout: float | None = None,
    description: str | None = None,
    concurrency: Concurrency | None = None,
    rate_limit: str | None = None,
    rate_key: str | None = None,
) -> Callable[[F], F]:
    """Define a task type whose handler is the decorated function.

    The handler is called as `handler(ctx, args)`: `ctx` a TaskContext, `args` the input
    validated into `input` (a pydantic model), or the input's dict when `input` is None. It
    returns a JSON value (the task's result). A plain `def` runs in a thread. `retries` and
    `timeout` (seconds per attempt) default to the installation's policy. `concurrency`
    limits how many tasks with the same value of an input field run at once; `rate_limit`
    ("10/s", "600/m", "5000/h") how many start per window, per value of `rate_key`
    ("input.domain") or for the whole type."""
    _check(name, queue, retries, timeout)
    if concurrency is not None:
        if not isinstance(concurrency, Concurrency) or not KEY_PATTERN.match(concurrency.key):
            raise DefinitionError(
                f"task type {name!r}: concurrency needs Concurrency(key=<an input field>, limit=)"
            )
        if not 1 <= concurrency.limit <= 1000:
            raise DefinitionError(f"task type {name!r}: a concurrency limit is 1-1000")
    if rate_limit is not None and not RATE_PATTERN.match(rate_limit):
        raise DefinitionError(
            f"task type {name!r}: rate_limit is '<n>/s', '<n>/m' or '<n>/h' (n 1-999999)"
        )
    if rate_key is not None and (
        rate_limit is None
        or not rate_key.startswith("input.")
        or not KEY_PATTERN.match(rate_key.removeprefix("input."))
    ):
        raise DefinitionError(
            f"task type {name!r}: rate_key names an input field ('input.domain') of a rate_limit"
        )
    if input is not None and not (isinstance(input, type) and issubclass(input, BaseModel)):
        raise DefinitionError(f"task type {name!r}: input must be a pydantic model class")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise DefinitionError(f"task type {name!r}: the handler must be a function")
        register(
            TaskType(
                name=name,
                handler=fn,
                queue=queue,
                input=input,
                retries=retries,
                timeout=timeout,
                description=description if description is not None else _doc(fn),
                concurrency=concurrency,
                rate_limit=rate_limit,
                rate_key=rate_key,
                module=getattr(fn, "__module__", ""),
            )
        )
        return fn

    return decorate


def _doc(fn: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(fn)
    return doc.strip().splitlines()[0] if doc else None
