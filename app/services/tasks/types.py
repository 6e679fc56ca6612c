"""Registered task types and their operations; workers provide a handler for each."""

from __future__ import annotations

from app.kernel.errors import InvalidInput

# task type -> operations it accepts (the first is the default)
TASK_TYPES: dict[str, tuple[str, ...]] = {
    "llm": ("chat_completion", "generate_embedding"),
    "echo": ("echo",),
}

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

# An operation alone names its task type (submitTask(operation: "chat_completion")).
OPERATION_TYPES: dict[str, str] = {op: tt for tt, ops in TASK_TYPES.items() for op in ops}


def resolve(
    task_type: str | None, operation: str | None, *, system: bool = False
) -> tuple[str, str]:
    """Return (task_type, operation) or raise InvalidInput naming the offending field."""
    if system and task_type in SYSTEM_TYPES:
        return task_type, operation or SYSTEM_TYPES[task_type][0]
    if task_type is None and operation is None:
        raise InvalidInput("give a taskType or an operation", field="taskType")
    if task_type is None:
        assert operation is not None
        if operation not in OPERATION_TYPES:
            raise InvalidInput(
                f"unknown operation {operation!r}; known: {sorted(OPERATION_TYPES)}",
                field="operation",
            )
        return OPERATION_TYPES[operation], operation
    if task_type not in TASK_TYPES:
        raise InvalidInput(
            f"unknown task type {task_type!r}; known: {sorted(TASK_TYPES)}", field="taskType"
        )
    ops = TASK_TYPES[task_type]
    if operation is None:
        return task_type, ops[0]
    if operation not in ops:
        raise InvalidInput(
            f"task type {task_type!r} has no operation {operation!r}; known: {list(ops)}",
            field="operation",
        )
    return task_type, operation
