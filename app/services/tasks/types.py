"""Task types a submission may name: opsgraph's own (with their operations) and those workers
registered from their users' packages (app/services/tasks/catalog.py); workers provide a
handler for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.kernel.errors import InvalidInput
from app.services.tasks.catalog import CATALOG, Registered

# task type -> operations it accepts (the first is the default)
TASK_TYPES: dict[str, tuple[str, ...]] = {
    "llm": ("chat_completion", "generate_embedding"),
    "echo": ("echo",),
}
# where opsgraph's own types go when a submission names no queue
BUILTIN_QUEUE = "llm"

# The camera pipeline's stages: written by opsgraph itself (never accepted from a client, since a
# detection reads a file on the worker's disk).
PIPELINE_TYPES: dict[str, tuple[str, ...]] = {
    "detection": ("detect",),
    "enrichment": ("enrich",),
    "analysis": ("risk_analysis",),
    # an event's analysis tried with a prompt configuration (changes nothing stored)
    "prompt_test": ("risk_analysis",),
    # an event's self-evaluation by the LLM judge (AI audit)
    "evaluation": ("judge",),
}

# Background work opsgraph starts itself (seed 004's metric exports; seed 002's jobs extend it).
BACKGROUND_TYPES: dict[str, tuple[str, ...]] = {
    "export": ("security_events", "tasks", "logs", "metrics"),
    "cleanup": ("retention",),
    "ai_processing": ("evaluate",),
}

SYSTEM_TYPES = {**PIPELINE_TYPES, **BACKGROUND_TYPES}
# names no user's task type may take
BUILTIN_TYPES = frozenset({*TASK_TYPES, *SYSTEM_TYPES})

# An operation alone names its task type (submitTask(operation: "chat_completion")).
OPERATION_TYPES: dict[str, str] = {op: tt for tt, ops in TASK_TYPES.items() for op in ops}


@dataclass(frozen=True)
class Resolved:
    task_type: str
    operation: str | None
    # a user's type as registered (None: one of opsgraph's own)
    registered: Registered | None = None

    @property
    def default_queue(self) -> str:
        return self.registered.queue if self.registered else BUILTIN_QUEUE

    def check_input(self, data: Any, *, field: str = "input") -> None:
        if self.registered is not None:
            CATALOG.check_input(self.registered, data, field=field)


def known() -> list[str]:
    """The names a client may submit: opsgraph's own and every registered one."""
    return sorted({*TASK_TYPES, *CATALOG.names()})


def resolve(task_type: str | None, operation: str | None, *, system: bool = False) -> Resolved:
    """What a submission names, or InvalidInput naming the offending field."""
    if system and task_type in SYSTEM_TYPES:
        return Resolved(task_type, operation or SYSTEM_TYPES[task_type][0])
    if task_type is None and operation is None:
        raise InvalidInput("give a taskType or an operation", field="taskType")
    if task_type is None:
        assert operation is not None
        if operation not in OPERATION_TYPES:
            raise InvalidInput(
                f"unknown operation {operation!r}; known: {sorted(OPERATION_TYPES)}",
                field="operation",
            )
        return Resolved(OPERATION_TYPES[operation], operation)
    if task_type not in TASK_TYPES:
        registered = None if task_type in SYSTEM_TYPES else CATALOG.get(task_type)
        if registered is None:
            raise InvalidInput(
                f"unknown task type {task_type!r}; known: {', '.join(known())}",
                field="taskType",
            )
        if operation is not None:
            raise InvalidInput(
                f"task type {task_type!r} has no operations; leave operation out",
                field="operation",
            )
        return Resolved(task_type, None, registered)
    ops = TASK_TYPES[task_type]
    if operation is None:
        return Resolved(task_type, ops[0])
    if operation not in ops:
        raise InvalidInput(
            f"task type {task_type!r} has no operation {operation!r}; known: {list(ops)}",
            field="operation",
        )
    return Resolved(task_type, operation)
