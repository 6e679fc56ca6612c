"""The one task state machine: statuses, allowed transitions, and the single check for them."""

from __future__ import annotations

from enum import StrEnum

from app.kernel.errors import InvalidTransition


class TaskStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# A retry is RUNNING -> QUEUED; a manual retry re-opens a FAILED or CANCELLED task.
ALLOWED: dict[TaskStatus | None, frozenset[TaskStatus]] = {
    None: frozenset({TaskStatus.QUEUED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.QUEUED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.QUEUED}),
}


def can_transition(current: str | None, target: str) -> bool:
    key = TaskStatus(current) if current is not None else None
    return TaskStatus(target) in ALLOWED[key]


def check_transition(current: str | None, target: str) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(f"a {current} task cannot become {target}", field="id")
