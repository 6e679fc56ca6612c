"""The task type registry in PostgreSQL: what starting workers write (one row per distinct
definition of a name) and what `taskTypes` reads, with the workers serving each type now (by
their heartbeats) and its tasks by status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import TaskCounter, TaskTypeDefinition
from app.kernel import effects
from app.services.tasks import types as task_types

# the event a registration publishes after commit (app/edge/state.py follows it)
TYPES_KIND = "task_types"


async def register(
    *, session: AsyncSession, definitions: Sequence[dict[str, Any]], worker: str
) -> None:
    """Upsert the definitions a worker serves: a definition seen before is only marked seen
    again (its first registration, which decides which one is newest, stays)."""
    if not definitions:
        return
    now = utcnow()
    rows = [
        {
            "name": d["name"],
            "definition_hash": d["hash"],
            "queue": d["queue"],
            "description": d.get("description"),
            "input_schema": d["input_schema"],
            "retries": d.get("retries"),
            "timeout_seconds": d.get("timeout"),
            "concurrency": d.get("concurrency"),
            "rate": d.get("rate"),
            "builtin": bool(d.get("builtin")),
            "first_registered_at": now,
            "last_registered_at": now,
            "last_worker": worker,
        }
        for d in sorted(definitions, key=lambda d: (d["name"], d["hash"]))  # a stable lock order
    ]
    stmt = insert(TaskTypeDefinition).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name", "definition_hash"],
            set_={"last_registered_at": now, "last_worker": worker},
        )
    )
    # every API process reads the registry again at once (a new definition is obeyed now)
    names = sorted({d["name"] for d in definitions})
    effects.record(session, effects.Published(TYPES_KIND, worker, {"names": names}))


@dataclass(frozen=True)
class Definition:
    definition_hash: str
    queue: str
    input_schema: dict[str, Any]
    retries: int | None
    timeout_seconds: float | None
    description: str | None
    first_registered_at: datetime
    last_registered_at: datetime
    last_worker: str | None
    # {"key": <input field>, "limit": n}, or None
    concurrency: dict[str, Any] | None = None
    # {"limit": "10/s", "key": "input.domain" or None}, or None
    rate: dict[str, Any] | None = None
    # the live workers running this very definition
    workers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskTypeInfo:
    name: str
    builtin: bool
    # the definition submissions obey (None: an own type no worker registered yet)
    current: Definition | None
    # every definition registered, newest first (two during a rolling deploy)
    definitions: list[Definition]
    workers: list[str]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def serving(self) -> bool:
        return bool(self.workers)


async def listing(
    *,
    session: AsyncSession,
    serving: Mapping[str, Sequence[tuple[str, str]]],
    tenant_id: str | None = None,
) -> list[TaskTypeInfo]:
    """Every task type a client may submit: opsgraph's own and those workers registered, by
    name. `serving`: the live workers of each type and the definition each runs (their
    heartbeats). Counts are the caller's tenant's tasks (all of them, installation-wide)."""
    rows = (
        await session.execute(
            select(TaskTypeDefinition).order_by(
                TaskTypeDefinition.name, TaskTypeDefinition.first_registered_at.desc()
            )
        )
    ).scalars()
    by_name: dict[str, list[TaskTypeDefinition]] = defaultdict(list)
    for r in rows:
        by_name[r.name].append(r)
    counted = select(TaskCounter.task_type, TaskCounter.status, func.sum(TaskCounter.tasks))
    if tenant_id is not None:
        counted = counted.where(TaskCounter.tenant == tenant_id)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for task_type, status, n in (
        await session.execute(counted.group_by(TaskCounter.task_type, TaskCounter.status))
    ).all():
        if n:
            counts[task_type][status] = int(n)
    names = sorted({*task_types.TASK_TYPES, *by_name})
    out = []
    for name in names:
        live = serving.get(name, [])
        defs = [
            _definition(r, sorted(w for w, h in live if h == r.definition_hash))
            for r in by_name.get(name, [])
        ]
        out.append(
            TaskTypeInfo(
                name=name,
                builtin=name in task_types.BUILTIN_TYPES,
                current=defs[0] if defs else None,
                definitions=defs,
                workers=sorted(w for w, _ in live),
                counts=counts.get(name, {}),
            )
        )
    return out


def _definition(r: TaskTypeDefinition, workers: list[str]) -> Definition:
    return Definition(
        definition_hash=r.definition_hash,
        queue=r.queue,
        input_schema=r.input_schema,
        retries=r.retries,
        timeout_seconds=r.timeout_seconds,
        description=r.description,
        first_registered_at=r.first_registered_at,
        last_registered_at=r.last_registered_at,
        last_worker=r.last_worker,
        concurrency=r.concurrency,
        rate=r.rate,
        workers=workers,
    )
