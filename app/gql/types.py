"""GraphQL object types for tasks, queues and workers, and the shared payload error type."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.forward import Forwards, forward
from app.kernel.bounds import PRIORITY_MAX, PRIORITY_MIN
from app.kernel.timing import duration_ms
from app.services.fleet import stats
from app.services.fleet.heartbeats import WorkerBeat
from app.services.tasks import queries as task_queries
from app.services.tasks.lifecycle import TaskStatus

CHILDREN_SHOWN = task_queries.CHILDREN_SHOWN

# the lifecycle's own statuses, declared once (app/services/tasks/lifecycle.py)
strawberry.enum(TaskStatus, description="The canonical task lifecycle.")


@strawberry.enum
class TaskErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    # a queue of opsgraph's own (the camera pipeline's): never a client's task
    RESERVED_QUEUE = "RESERVED_QUEUE"
    # an idempotency key given before with a different request
    CONFLICT = "CONFLICT"
    # the tenant has OPSGRAPH_MAX_QUEUED_PER_TENANT tasks queued
    TOO_MANY_QUEUED = "TOO_MANY_QUEUED"


@strawberry.type(description="An expected failure of a mutation: data, not an exception.")
class TaskError:
    field: str | None
    code: TaskErrorCode
    message: str


@strawberry.type
class Origin:
    instance: str
    zone: str | None
    tenant_id: str | None
    reference: str | None


@strawberry.type
class TaskTransitionRecord(Forwards):
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: datetime
    reason: str | None


@strawberry.type
class TaskLogLine(Forwards):
    at: datetime
    level: str
    message: str
    fields: JSON | None = strawberry.field(
        description="What a task handler gave with the line (ctx.log(message, **fields))."
    )


@strawberry.type
class ProgressPoint:
    at: datetime
    progress: float
    message: str | None


@strawberry.type
class MediaItem:
    name: str
    path: str
    url: str
    media_type: str


@strawberry.type
class TaskMedia:
    inputs: list[MediaItem]
    outputs: list[MediaItem]


def media_items(raw: Any) -> list[MediaItem]:
    items = []
    for m in raw if isinstance(raw, list) else []:
        if isinstance(m, dict):
            items.append(
                MediaItem(
                    name=str(m.get("name", "")),
                    path=str(m.get("path", "")),
                    url=str(m.get("url", "")),
                    media_type=str(m.get("media_type", "")),
                )
            )
    return items


@strawberry.type(description="One unit of work: an LLM call, an echo, a job or a step.")
class Task:
    # The fields declared here (but `status`, an enum) are read straight off the row
    # (PLAIN_FIELDS): plain attributes, which Strawberry resolves without building an Info or
    # running a resolver (most of a list's cost is per field).
    row: strawberry.Private[Any]
    id: uuid.UUID
    task_type: str
    operation: str | None
    status: TaskStatus
    queue: str
    priority: int = strawberry.field(
        description=f"{PRIORITY_MIN}-{PRIORITY_MAX}; higher runs first."
    )
    result: JSON | None
    result_ttl_seconds: int | None
    attempts: int = strawberry.field(
        description="Attempts started so far (a resumed attempt is not counted)."
    )
    max_attempts: int
    retry_count: int
    next_attempt_at: datetime | None
    dead_lettered: bool = strawberry.field(
        description="FAILED after its retries ran out (or a fatal error)."
    )
    cancel_requested_at: datetime | None
    is_resumed: bool
    resume_attempt_count: int
    last_resume_attempt: datetime | None
    progress: float
    provider: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    worker_name: str | None
    job_id: str | None
    webhook_url: str | None
    run_at: datetime | None = strawberry.field(
        description="When it was submitted to run (runAt or delaySeconds); null: at once."
    )
    due_at: datetime | None = strawberry.field(
        description="Set while the task waits for its time (QUEUED, no queue job yet); null "
        "once a worker's ticker has put it in its queue."
    )
    concurrency_key: str | None = strawberry.field(
        description="At most concurrencyLimit tasks of this key (within the tenant) run at once."
    )
    concurrency_limit: int | None
    rate_key: str | None = strawberry.field(
        description="Its type's rate limit counts its starts under this key."
    )
    rate_limit: str | None = strawberry.field(description='Starts per window: "10/s", "600/m".')

    @classmethod
    def of(cls, row: Any) -> Task:
        """From a task row: a whole ORM row, or a lean row holding only the columns a
        selection needs (see `columns_for`); what a row lacks is never resolved."""
        lean = getattr(row, "_fields", None)  # a Row of chosen columns, or an ORM row
        if lean is not None:
            have = dict(zip(lean, row, strict=True))
            values: dict[str, Any] = {name: have.get(name) for name in PLAIN_FIELDS}
            status = have.get("status")
        else:
            values = {name: getattr(row, name) for name in PLAIN_FIELDS}
            status = row.status
        return cls(
            row=row,
            status=TaskStatus(status) if status is not None else TaskStatus.QUEUED,
            **values,
        )

    @strawberry.field
    def origin(self) -> Origin:
        r = self.row
        return Origin(
            instance=r.origin_instance,
            zone=r.origin_zone,
            tenant_id=r.origin_tenant_id,
            reference=r.origin_reference,
        )

    @strawberry.field
    def input(self) -> JSON:
        return cast(JSON, self.row.input)

    @strawberry.field
    def config(self) -> JSON:
        return cast(JSON, self.row.config)

    @strawberry.field
    def metadata(self) -> JSON:
        return cast(JSON, self.row.meta)

    @strawberry.field
    def errors(self) -> list[str]:
        return list(self.row.errors or [])

    @strawberry.field
    def has_error(self) -> bool:
        return bool(self.row.errors)

    @strawberry.field
    def progress_history(self) -> list[ProgressPoint]:
        return [
            ProgressPoint(
                at=datetime.fromisoformat(p["at"]),
                progress=float(p["progress"]),
                message=p.get("message"),
            )
            for p in self.row.progress_history or []
        ]

    @strawberry.field
    def duration_ms(self) -> float | None:
        return duration_ms(self.started_at, self.completed_at)

    @strawberry.field
    def media(self) -> TaskMedia:
        m = self.row.media or {}
        return TaskMedia(inputs=media_items(m.get("inputs")), outputs=media_items(m.get("outputs")))

    @strawberry.field
    def service_requests(self) -> list[JSON]:
        return [cast(JSON, r) for r in self.row.service_requests or []]

    @strawberry.field(description="Every status change, oldest first.")
    async def transitions(self, info: Info) -> list[TaskTransitionRecord]:
        rows = await info.context.loaders.transitions.load(self.id)
        return [TaskTransitionRecord.of(r) for r in rows]

    @strawberry.field(
        description="Log lines (failures, retries, cancels, resumes, a handler's ctx.log), "
        "oldest first."
    )
    async def logs(self, info: Info) -> list[TaskLogLine]:
        rows = await info.context.loaders.logs.load(self.id)
        return [TaskLogLine.of(r) for r in rows]

    @strawberry.field(description="The task whose handler submitted this one (ctx.submit).")
    async def parent(self, info: Info) -> Task | None:
        parent_id = self.row.parent_id
        if parent_id is None:
            return None
        row = await info.context.loaders.tasks.load(parent_id)
        return Task.of(row) if row is not None else None

    @strawberry.field(
        description=f"Tasks its handler submitted (ctx.submit), oldest first; at most "
        f"{CHILDREN_SHOWN}."
    )
    async def children(self, info: Info) -> list[Task]:
        rows = await info.context.loaders.children.load(self.id)
        return [Task.of(r) for r in rows]


PLAIN_FIELDS = tuple(
    f.name for f in dataclasses.fields(Task) if f.init and f.name not in ("row", "status")
)


# The row attributes each Task field reads (GraphQL name -> ORM attribute names), so a list
# loads only the columns its selection needs. A field missing here loads whole rows.
TASK_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "status": ("status",),
    "origin": ("origin_instance", "origin_zone", "origin_tenant_id", "origin_reference"),
    "input": ("input",),
    "config": ("config",),
    "metadata": ("meta",),
    "errors": ("errors",),
    "hasError": ("errors",),
    "progressHistory": ("progress_history",),
    "durationMs": ("started_at", "completed_at"),
    "media": ("media",),
    "serviceRequests": ("service_requests",),
    "transitions": (),
    "logs": (),
    "parent": ("parent_id",),
    "children": (),
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


TASK_FIELD_COLUMNS.update({_camel(name): (name,) for name in PLAIN_FIELDS})


@strawberry.type
class CountByKey:
    key: str
    count: int


def counts(d: dict[str, int]) -> list[CountByKey]:
    return [CountByKey(key=k, count=v) for k, v in sorted(d.items())]


@strawberry.type
class TaskStats:
    total_tasks: int
    by_status: list[CountByKey]
    by_provider: list[CountByKey]
    by_task_type: list[CountByKey]
    tasks_last_hour: int
    tasks_last_24h: int

    @classmethod
    def of(cls, s: stats.AggregateStats) -> TaskStats:
        return forward(
            cls,
            s,
            by_status=counts(s.by_status),
            by_provider=counts(s.by_provider),
            by_task_type=counts(s.by_task_type),
        )


@strawberry.type
class QueueFigures:
    name: str
    depth: int
    active_workers: int
    active_tasks: int
    reserved_tasks: int
    avg_wait_time_ms: float | None
    tasks_completed_last_hour: int


@strawberry.type
class QueueStats:
    queues: list[QueueFigures]
    total_pending: int
    total_active: int
    timestamp: datetime

    @classmethod
    def of(cls, o: stats.QueueOverview) -> QueueStats:
        return forward(cls, o, queues=[forward(QueueFigures, q) for q in o.queues])


@strawberry.type
class Worker:
    name: str
    queues: list[str]
    concurrency: int
    active_tasks: int
    utilization_pct: float
    has_capacity: bool
    tasks_completed_total: int
    tasks_failed_total: int
    tasks_per_minute: float
    memory_mb: float | None
    last_seen: datetime

    @classmethod
    def of(cls, w: WorkerBeat) -> Worker:
        return forward(
            cls,
            w,
            active_tasks=w.active,
            tasks_completed_total=w.completed,
            tasks_failed_total=w.failed,
            last_seen=datetime.fromtimestamp(w.last_seen, UTC),
        )


@strawberry.type
class WorkerStats:
    workers: list[Worker]
    total_workers: int
    total_capacity: int
    total_active: int
    total_utilization_pct: float
    workers_at_capacity: int
    timestamp: datetime


@strawberry.type
class WorkerHealth:
    healthy: bool
    total_workers: int
    workers_with_capacity: int
    queues_with_workers: list[str]
    queues_without_workers: list[str]
    timestamp: datetime
