"""Before-commit reactions: what other domains do inside the transaction that changes a task.

The task core names no domain built on it. A domain (workflows, the camera pipeline, the
audit, a user's own task types) registers a reaction here with the tasks it watches; the unit
of work runs every reaction, in the order registered, after the transaction's own work and
before its commit, so a step's completion and the scheduling of its successors are one atomic
write. Registration happens where a process is assembled (app/edge/domains.py), not at import.

The worker's hot path asks `watched(task)` before it writes an attempt's completion: a task no
reaction watches is plain, and its completion is one raw statement (attempt_writes); a watched
one completes through the unit of work, as every failure and cancellation does. A start is
written raw for any task outside a workflow (task_statements' RAW_START_*): only the workflow
engine, which watches every change of a step (`workflow_steps`), needs to see starts. What
`watched` reads is rebuilt at each registration, never per task."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task

Reaction = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class Registered:
    name: str
    react: Reaction
    # the task types whose outcomes (completion, failure, cancellation) it must see inside
    # their transaction
    task_types: frozenset[str] = frozenset()
    # it must see every change of a task that is a workflow's step, its start included
    workflow_steps: bool = False


@dataclass(frozen=True)
class _Watch:
    """What the hot path reads: the union of every registration's watch."""

    task_types: frozenset[str]
    workflow_steps: bool


_registered: dict[str, Registered] = {}
# built at each registration, read by every unit of work and every attempt write
_ordered: tuple[Registered, ...] = ()
_watch: _Watch | None = None  # None: nothing registered yet
NOTHING_REGISTERED = (
    "no domain is registered with the task core: install them where the process is assembled"
    " (app.edge.domains.install)"
)


def register(
    name: str,
    react: Reaction,
    *,
    task_types: Iterable[str] = (),
    workflow_steps: bool = False,
) -> None:
    """Run `react(session)` before every unit of work commits. Registering a name again
    replaces its reaction and keeps its place in the order."""
    global _ordered, _watch
    _registered[name] = Registered(name, react, frozenset(task_types), workflow_steps)
    _ordered = tuple(_registered.values())
    _watch = _Watch(
        task_types=frozenset().union(*(r.task_types for r in _registered.values())),
        workflow_steps=any(r.workflow_steps for r in _registered.values()),
    )


def registered() -> tuple[Registered, ...]:
    """The registrations, in the order they run."""
    return _ordered


async def react(session: AsyncSession) -> None:
    """Every registered reaction, in order (the unit of work calls this before commit)."""
    if _watch is None:
        raise RuntimeError(NOTHING_REGISTERED)
    for r in _ordered:
        await r.react(session)


def watched(task: Task) -> bool:
    """Some reaction must see this task's changes inside their transaction."""
    watch = _watch
    if watch is None:
        raise RuntimeError(NOTHING_REGISTERED)
    return task.task_type in watch.task_types or (
        watch.workflow_steps and task.workflow_id is not None
    )
