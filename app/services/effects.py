"""After-commit effects that services record on the session (events to publish, jobs to enqueue
or abort). Services stay free of Redis and arq; the unit of work carries them out after commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "opsgraph.effects"


@dataclass(frozen=True)
class TaskChanged:
    snapshot: dict[str, Any]


@dataclass(frozen=True)
class Enqueue:
    task_id: str
    queue: str
    priority: int
    task_type: str
    defer_seconds: float = 0.0

    @classmethod
    def of(cls, task: Any) -> Enqueue:
        return cls(str(task.id), task.queue, task.priority, task.task_type)


@dataclass(frozen=True)
class Abort:
    task_id: str


Effect = TaskChanged | Enqueue | Abort


def record(session: AsyncSession, effect: Effect) -> None:
    session.info.setdefault(_KEY, []).append(effect)


def take(session: AsyncSession) -> list[Effect]:
    effects: list[Effect] = session.info.pop(_KEY, [])
    # Only the latest snapshot of each task matters to subscribers.
    latest: dict[str, int] = {}
    for i, e in enumerate(effects):
        if isinstance(e, TaskChanged):
            latest[e.snapshot["id"]] = i
    return [
        e
        for i, e in enumerate(effects)
        if not isinstance(e, TaskChanged) or latest[e.snapshot["id"]] == i
    ]


def discard(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)
