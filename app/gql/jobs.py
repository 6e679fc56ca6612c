"""Background jobs in GraphQL: the jobs connection with its filters and facets, one job with
its progress history, transitions and logs, types and statistics; start, cancel, abort and
bulk cancel; a job's live progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Awaitable
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.db.models import Task as TaskRow
from app.gql.context import Info
from app.gql.errors import CaptureErrors, acted, json_object, raised, user_error
from app.gql.forward import forward
from app.gql.pagination import Connection, Listed, Paged, Slice, Sort, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.reads import or_not_found, or_null
from app.gql.throttle import visible
from app.kernel.bounds import LIMIT_MAX
from app.kernel.errors import DomainError
from app.platform.events import Event
from app.services.jobs import actions, queries, types


@strawberry.enum
class JobStatus(Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.type
class JobProgressPoint:
    timestamp: datetime | None
    progress: float
    message: str | None


@strawberry.type
class JobTransition:
    from_status: JobStatus | None
    to_status: JobStatus
    at: datetime
    reason: str | None


@strawberry.type
class JobLogLine:
    timestamp: datetime
    level: str
    message: str


def _word(status: str | None) -> JobStatus | None:
    return None if status is None else JobStatus(types.STATUS_WORDS[status])


@strawberry.type
class Job:
    row: strawberry.Private[TaskRow]
    id: strawberry.ID
    job_type: str
    status: JobStatus
    progress: float
    queue: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    result: JSON | None
    metadata: JSON = strawberry.field(
        description="The job's parameters and what it was started with."
    )
    attempts: int
    max_attempts: int

    @classmethod
    def of(cls, row: TaskRow) -> Job:
        params = {k: v for k, v in row.input.items() if k != "tenant_id"}
        return forward(
            cls,
            row,
            row=row,
            job_type=row.task_type,
            status=_word(row.status),
            error_message=row.errors[-1] if row.errors else None,
            metadata=cast(JSON, {**params, **row.meta}),
        )

    @strawberry.field
    def progress_history(self) -> list[JobProgressPoint]:
        return [
            JobProgressPoint(
                timestamp=datetime.fromisoformat(p["at"]) if p.get("at") else None,
                progress=float(p.get("progress", 0)),
                message=p.get("message"),
            )
            for p in self.row.progress_history
        ]

    @strawberry.field
    async def transitions(self, info: Info) -> list[JobTransition]:
        async with info.context.reading() as session:
            history = await queries.transitions(session, self.row.id)
        return [
            forward(
                JobTransition, t, from_status=_word(t.from_status), to_status=_word(t.to_status)
            )
            for t in history
        ]

    @strawberry.field
    async def logs(
        self, info: Info, level: str | None = None, limit: int = 100
    ) -> list[JobLogLine]:
        try:
            async with info.context.reading() as session:
                lines = await queries.logs(
                    session=session,
                    job_id=self.row.id,
                    level=level,
                    since=None,
                    limit=max(1, min(limit, LIMIT_MAX)),
                )
        except DomainError as exc:
            raise user_error(exc.message) from None
        return [forward(JobLogLine, x) for x in lines]


@strawberry.input
class JobFilter:
    job_types: list[str] | None = None
    statuses: list[JobStatus] | None = None
    queue: str | None = None
    text: str | None = strawberry.field(default=None, description="Type, error, metadata")
    created_after: datetime | None = None
    created_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None
    has_error: bool | None = None
    min_duration: float | None = None
    max_duration: float | None = None

    def to_service(self, tenant_id: str | None) -> queries.JobFilter:
        return forward(
            queries.JobFilter,
            self,
            job_types=list(self.job_types or ()),
            statuses=[types.STATUSES[s.value] for s in self.statuses or ()],
            tenant_id=tenant_id,
        )


@strawberry.type
class JobCount:
    key: str
    count: int


@strawberry.type
class JobFacets:
    by_status: list[JobCount]
    by_type: list[JobCount]


@strawberry.type
class JobTypeInfo:
    type: str
    description: str
    supports_abort: bool


@strawberry.type
class JobStats:
    total_jobs: int
    by_status: list[JobCount]
    by_type: list[JobCount]
    avg_duration_seconds: float | None
    jobs_today: int
    jobs_this_hour: int


def _counts(found: dict[str, int]) -> list[JobCount]:
    return [JobCount(key=k, count=v) for k, v in found.items()]


JOBS = Listed("jobs", queries.JOBS, Job.of, Sort("created_at"))


@strawberry.type
class JobQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Jobs, newest first.",
        extensions=[Paged(JobFilter)],
    )
    async def jobs(self, info: Info, window: Slice) -> Connection[Job]:
        scope = window.filter.to_service(info.context.tenant_id)
        return await connection(info, window, JOBS, scope)

    @strawberry.field(
        permission_classes=[CanRead],
        description="Counts by status and by type, each under every filter but its own.",
    )
    async def job_facets(self, info: Info, filter: JobFilter | None = None) -> JobFacets:
        scope = (filter or JobFilter()).to_service(info.context.tenant_id)
        try:
            async with info.context.reading() as session:
                f = await queries.facets(session=session, filter=scope)
        except DomainError as exc:
            raise raised(exc) from None
        return JobFacets(by_status=_counts(f.by_status), by_type=_counts(f.by_type))

    @strawberry.field(permission_classes=[CanRead], description="One job, or null.")
    async def job(self, info: Info, id: uuid.UUID) -> Job | None:
        tenant = info.context.tenant_id
        return await or_null(
            info, lambda s: actions.get_job(session=s, job_id=id, tenant_id=tenant), Job.of
        )

    @strawberry.field(permission_classes=[CanRead])
    def job_types(self) -> list[JobTypeInfo]:
        return [forward(JobTypeInfo, t) for t in types.JOB_TYPES.values()]

    @strawberry.field(permission_classes=[CanRead])
    async def job_stats(self, info: Info) -> JobStats:
        async with info.context.reading() as session:
            s = await queries.stats(session=session, tenant_id=info.context.tenant_id)
        return forward(JobStats, s, by_status=_counts(s.by_status), by_type=_counts(s.by_type))


@strawberry.type
class JobError:
    field: str | None
    code: str = strawberry.field(
        description="job_not_found, job_conflict, insufficient_permissions, INVALID"
    )
    message: str


@strawberry.type
class JobPayload:
    job: Job | None
    errors: list[JobError]


@strawberry.type
class BulkCancelResult:
    job_id: str
    success: bool
    action: str | None
    error: str | None


@strawberry.type
class BulkCancelPayload:
    successful: int
    failed: int
    results: list[BulkCancelResult]


@strawberry.type
class JobMutations:
    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def start_job(self, info: Info, type: str, params: JSON | None = None) -> JobPayload:
        ctx = info.context
        wanted = cast(dict[str, Any], json_object(params, "params"))
        async with ctx.writing() as session:
            row = await actions.start_job(
                session=session,
                job_type=type,
                params=dict(wanted),
                actor=ctx.actor,
                tenant_id=ctx.tenant_id,
                is_admin=ctx.is_admin,
            )
        return JobPayload(job=Job.of(row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate], description="A pending job.", extensions=[CaptureErrors()]
    )
    async def cancel_job(self, info: Info, id: uuid.UUID) -> JobPayload:
        return await acted(info, actions.cancel_job, JobPayload, Job.of, job_id=id)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="A running, abortable job: its worker stops; it ends CANCELLED.",
        extensions=[CaptureErrors()],
    )
    async def abort_job(self, info: Info, id: uuid.UUID) -> JobPayload:
        return await acted(info, actions.abort_job, JobPayload, Job.of, job_id=id)

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Each job stopped as it can be (pending: cancelled; running: aborted).",
    )
    async def bulk_cancel_jobs(self, info: Info, ids: list[uuid.UUID]) -> BulkCancelPayload:
        ctx = info.context
        if len(ids) > actions.MAX_BULK:
            raise user_error(f"at most {actions.MAX_BULK} jobs")
        results = []
        for job_id in dict.fromkeys(ids):
            try:
                async with ctx.writing() as session:
                    done = await actions.stop_job(
                        session=session, job_id=job_id, tenant_id=ctx.tenant_id
                    )
                results.append(
                    BulkCancelResult(
                        job_id=str(job_id), success=True, action=done.action, error=None
                    )
                )
            except DomainError as exc:
                results.append(
                    BulkCancelResult(
                        job_id=str(job_id), success=False, action=None, error=exc.message
                    )
                )
        ok = sum(1 for r in results if r.success)
        return BulkCancelPayload(successful=ok, failed=len(results) - ok, results=results)


@strawberry.type
class JobSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="A job now, then at each change (progress, status) until it finishes.",
    )
    async def job_progress(self, info: Info, id: uuid.UUID) -> AsyncGenerator[Job, None]:
        ctx = info.context
        tenant = ctx.tenant_id
        key = str(id)

        def predicate(e: Event) -> bool:
            return e.kind == "task" and e.key == key and visible(e, tenant)

        def load(session: AsyncSession) -> Awaitable[TaskRow]:
            return actions.get_job(session=session, job_id=id, tenant_id=tenant)

        async with ctx.state.broker.subscribe(predicate) as sub:
            row = await or_not_found(info, load)
            yield Job.of(row)
            if row.status in ("COMPLETED", "FAILED", "CANCELLED"):
                return
            async for _ in sub:
                async with ctx.reading() as session:
                    row = await load(session)
                yield Job.of(row)
                if row.status in ("COMPLETED", "FAILED", "CANCELLED"):
                    return
