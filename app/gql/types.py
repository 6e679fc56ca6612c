"""GraphQL object types for tasks, queues and workers, and the shared payload error type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.db.models import TaskLog, TaskTransition
from app.gql.context import Info
from app.services import stats
from app.services.heartbeats import WorkerBeat
from app.services.timing import duration_ms


@strawberry.enum(description="The canonical task lifecycle.")
class TaskStatus(Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class TaskErrorCode(Enum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    # a queue of opsgraph's own (the camera pipeline's): never a client's task
    RESERVED_QUEUE = "RESERVED_QUEUE"


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
class TaskTransitionRecord:
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: datetime
    reason: str | None

    @classmethod
    def from_row(cls, row: TaskTransition) -> TaskTransitionRecord:
        return cls(
            from_status=TaskStatus(row.from_status) if row.from_status else None,
            to_status=TaskStatus(row.to_status),
            at=row.at,
            reason=row.reason,
        )


@strawberry.type
class TaskLogLine:
    at: datetime
    level: str
    message: str

    @classmethod
    def from_row(cls, row: TaskLog) -> TaskLogLine:
        return cls(at=row.at, level=row.level, message=row.message)


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


# Fields read straight off the row: plain attributes, which Strawberry resolves without
# building an Info or running a resolver (most of a list's cost is per field).
PLAIN_FIELDS = (
    "id",
    "task_type",
    "operation",
    "queue",
    "priority",
    "result",
    "result_ttl_seconds",
    "attempts",
    "max_attempts",
    "retry_count",
    "next_attempt_at",
    "dead_lettered",
    "cancel_requested_at",
    "is_resumed",
    "resume_attempt_count",
    "last_resume_attempt",
    "progress",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "worker_name",
    "job_id",
    "webhook_url",
)


@strawberry.type(description="One unit of work: an LLM call, an echo, a job or a step.")
class Task:
    row: strawberry.Private[Any]
    id: uuid.UUID
    task_type: str
    operation: str | None
    status: TaskStatus
    queue: str
    priority: int = strawberry.field(description="0-100; higher runs first.")
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
        return [TaskTransitionRecord.from_row(r) for r in rows]

    @strawberry.field(description="Log lines (failures, retries, cancels, resumes), oldest first.")
    async def logs(self, info: Info) -> list[TaskLogLine]:
        rows = await info.context.loaders.logs.load(self.id)
        return [TaskLogLine.from_row(r) for r in rows]


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
    def from_stats(cls, s: stats.AggregateStats) -> TaskStats:
        return cls(
            total_tasks=s.total_tasks,
            by_status=counts(s.by_status),
            by_provider=counts(s.by_provider),
            by_task_type=counts(s.by_task_type),
            tasks_last_hour=s.tasks_last_hour,
            tasks_last_24h=s.tasks_last_24h,
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
    def from_overview(cls, o: stats.QueueOverview) -> QueueStats:
        return cls(
            queues=[QueueFigures(**vars(q)) for q in o.queues],
            total_pending=o.total_pending,
            total_active=o.total_active,
            timestamp=o.timestamp,
        )


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
    def from_beat(cls, w: WorkerBeat) -> Worker:
        return cls(
            name=w.name,
            queues=w.queues,
            concurrency=w.concurrency,
            active_tasks=w.active,
            utilization_pct=w.utilization_pct,
            has_capacity=w.has_capacity,
            tasks_completed_total=w.completed,
            tasks_failed_total=w.failed,
            tasks_per_minute=w.tasks_per_minute,
            memory_mb=w.memory_mb,
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
