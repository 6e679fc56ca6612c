"""After-commit effects that services record on the session (events to publish, jobs to enqueue
or abort). Services stay free of Redis and arq; the unit of work carries them out after commit.

The same record holds the facts a transaction's before-commit reactions read (a task's change,
an AI decision): the reactions registered with the task core (app/services/tasks/reactions.py)
act on them inside the transaction; after commit, nothing is carried out for a Decided."""

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
    # "<limit>|<scoped key>" for a task with a concurrency key (`_scoped`): dispatch writes
    # it beside the job for the workers' claim
    concurrency: str | None = None
    # "<n>|<window ms>|<scoped key>" for a task of a rate-limited type
    rate: str | None = None

    @classmethod
    def of(cls, task: Any) -> Enqueue:
        """The job of a task (or a row with its id, queue, priority, type, concurrency and
        rate)."""
        return cls(
            str(task.id),
            task.queue,
            task.priority,
            task.task_type,
            concurrency=concurrency(task),
            rate=rate(task),
        )


WINDOWS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}


def rate(task: Any) -> str | None:
    """A task's rate marker: how many may start per window, under its key (its tenant's)."""
    limit = getattr(task, "rate_limit", None)
    if limit is None:
        return None
    count, unit = str(limit).split("/", 1)
    return f"{int(count)}|{WINDOWS_MS[unit]}|{_scoped(task, task.rate_key)}"


def concurrency(task: Any) -> str | None:
    """A task's concurrency marker: its limit and its key, scoped to its tenant."""
    key = getattr(task, "concurrency_key", None)
    if key is None:
        return None
    return f"{task.concurrency_limit}|{_scoped(task, key)}"


def _scoped(task: Any, key: str) -> str:
    """A key within its task's tenant: the tenant's length first, so no tenant's name and key
    can spell another's ("a/b" + "c" is not "a" + "b/c")."""
    tenant = getattr(task, "origin_tenant_id", None) or ""
    return f"{len(tenant)}:{tenant}/{key}"


@dataclass(frozen=True)
class Abort:
    task_id: str


@dataclass(frozen=True)
class WorkflowChanged:
    workflow_id: str
    status: str
    tenant_id: str | None


@dataclass(frozen=True)
class CancelTask:
    """Cancel a task in its own transaction after commit (never under a workflow lock)."""

    task_id: str


@dataclass(frozen=True)
class Webhook:
    """Nudge a worker to send a recorded delivery now (the outbox relay sends it anyway)."""

    delivery_id: str
    queue: str


@dataclass(frozen=True)
class Published:
    """An event for subscribers (security events, batches, the DLQ), published after commit."""

    kind: str
    key: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Decided:
    """An AI decision a domain stored (the pipeline's stage reactions), to be kept on record
    in the same transaction by whoever keeps such records (the audit's reaction)."""

    stage: str
    snapshot: dict[str, Any]  # the task that decided, as TaskChanged carries it
    camera_id: str
    model: str
    input_summary: str
    output: dict[str, Any]
    detection_id: int | None = None
    batch_id: str | None = None
    event_id: int | None = None


Effect = (
    TaskChanged | Enqueue | Abort | WorkflowChanged | CancelTask | Webhook | Published | Decided
)


def record(session: AsyncSession, effect: Effect) -> None:
    session.info.setdefault(_KEY, []).append(effect)


def take(session: AsyncSession) -> list[Effect]:
    effects: list[Effect] = session.info.pop(_KEY, [])
    # Only the latest snapshot of each task matters to subscribers.
    latest: dict[tuple[str, str], int] = {}
    for i, e in enumerate(effects):
        key = _key(e)
        if key is not None:
            latest[key] = i
    return [e for i, e in enumerate(effects) if (k := _key(e)) is None or latest[k] == i]


def _key(e: Effect) -> tuple[str, str] | None:
    if isinstance(e, TaskChanged):
        return ("task", e.snapshot["id"])
    if isinstance(e, WorkflowChanged):
        return ("workflow", e.workflow_id)
    if isinstance(e, Published):
        return (e.kind, e.key)
    return None


def peek(session: AsyncSession) -> list[Effect]:
    effects: list[Effect] = session.info.get(_KEY, [])
    return effects


def discard(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)
