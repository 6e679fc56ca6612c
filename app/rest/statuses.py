"""opsgraph's one set of task statuses (app/services/tasks/lifecycle.py) in the words of each
seed document (DESIGN.md section 3), and task types in seed 001's."""

from __future__ import annotations

from app.services.tasks.lifecycle import TaskStatus
from app.services.tasks.types import BUILTIN_TYPES


def in_words(*words: str) -> dict[str, str]:
    """Each status, in the order TaskStatus lists them, as a seed writes it."""
    return {status.value: word for status, word in zip(TaskStatus, words, strict=True)}


def type_in_words(task_type: str) -> str:
    """Seed 001 writes task types in capitals (`GENERATION`): opsgraph's own, lower case
    (`llm`), are shown in capitals; a user's type as it was registered (`images.resize`)."""
    return task_type.upper() if task_type in BUILTIN_TYPES else task_type


def types_from_words(word: str) -> list[str]:
    """The task types a seed-001 `task_type` filter means: one of opsgraph's own by its
    capitals (or name), a user's type by its name as registered."""
    return [word.lower()] if word.lower() in BUILTIN_TYPES else [word]
