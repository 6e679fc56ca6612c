"""opsgraph's one set of task statuses (app/services/tasks/lifecycle.py) in the words of each
seed document (DESIGN.md section 3)."""

from __future__ import annotations

from app.services.tasks.lifecycle import TaskStatus


def in_words(*words: str) -> dict[str, str]:
    """Each status, in the order TaskStatus lists them, as a seed writes it."""
    return {status.value: word for status, word in zip(TaskStatus, words, strict=True)}
