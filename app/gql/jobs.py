"""Background jobs in GraphQL: the jobs connection with its filters and facets, one job with
its progress history, transitions and logs, types and statistics; start, cancel, abort and
bulk cancel; a job's live progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON

from app.auth import Permission
from app.db.models import Task as TaskRow
from app.events import Event
from app.gql.context import Info
from app.gql.pagination import Connection, Slice, connection
from app.gql.permissions import CanOperate, CanRead
from app.gql.throttle import visible
from app.services.errors import DomainError, InvalidInput, NotFound
from app.services.jobs import actions, queries, types
from app.services.paging import Page, PageRequest
from app.uow import read_only, unit_of_work


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

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field
    def job_type(self) -> str:
        return self.row.task_type

    @strawberry.field
    def status(self) -> JobStatus:
        return JobStatus(types.STATUS_WORDS[self.row.status])

    @strawberry.field
    def progress(self) -> float:
        return self.row.progress

    @strawberry.field
    def queue(self) -> str:
        return self.row.queue

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @strawberry.field
    def completed_at(self) -> datetime | None:
        return self.row.completed_at

    @strawberry.field
    def error_message(self) -> str | None:
        return self.row.errors[-1] if self.row.errors else None

    @strawberry.field
    def result(self) -> JSON | None:
        return cast(JSON, self.row.result)

    @strawberry.field(description="The job's parameters and what it was started with.")
    def metadata(self) -> JSON:
        params = {k: v for k, v in self.row.input.items() if k != "tenant_id"}
        return cast(JSON, {**params, **self.row.meta})

    @strawberry.field
    def attempts(self) -> int:
        return self.row.attempts

    @strawberry.field
    def max_attempts(self) -> int:
        return self.row.max_attempts

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
        async with read_only(info.context.state.sessionmaker) as session:
            history = await queries.transitions(session, self.row.id)
        return [
            JobTransition(
                from_status=_word(t.from_status),
                to_status=JobStatus(types.STATUS_WORDS[t.to_status]),
                at=t.at,
                reason=t.reason,
            )
            for t in history
        ]

    @strawberry.field
    async def logs(
        self, info: Info, level: str | None = None, limit: int = 100
    ) -> list[JobLogLine]:
        try:
            async with read_only(info.context.state.sessionmaker) as session:
                lines = await queries.logs(
                    session=session,
                    job_id=self.row.id,
                    level=level,
                    since=None,
                    limit=max(1, min(limit, 1000)),
                )
        except DomainError as exc:
            raise GraphQLError(exc.message, extensions={"code": "BAD_USER_INPUT"}) from None
        return [JobLogLine(timestamp=x.timestamp, level=x.level, message=x.message) for x in lines]


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
        return queries.JobFilter(
            job_types=list(self.job_types or ()),
            statuses=[types.STATUSES[s.value] for s in self.statuses or ()],
            queue=self.queue,
            text=self.text,
            created_after=self.created_after,
            created_before=self.created_before,
            completed_after=self.completed_after,
            completed_before=self.completed_before,
            has_error=self.has_error,
            min_duration=self.min_duration,
            max_duration=self.max_duration,
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


def _bad(exc: DomainError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": "BAD_USER_INPUT", "field": exc.field})


@strawberry.type
class JobQueries:
    @strawberry.field(permission_classes=[CanRead], description="Jobs, newest first.")
    async def jobs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: JobFilter | None = None,
    ) -> Connection[Job]:
        scope = (filter or JobFilter()).to_service(info.context.tenant_id)

        async def rows(session: AsyncSession, request: PageRequest) -> Page[TaskRow]:
            return await queries.list_jobs(session=session, filter=scope, page=request)

        async def count(session: AsyncSession) -> int:
            return await queries.count_jobs(session=session, filter=scope)

        return await connection(
            info,
            Slice(first, after, last, before),
            name="jobs",
            order_by="created_at",
            descending=True,
            scope=scope,
            rows=rows,
            count=count,
            node=lambda row: Job(row=row),
        )

    @strawberry.field(
        permission_classes=[CanRead],
        description="Counts by status and by type, each under every filter but its own.",
    )
    async def job_facets(self, info: Info, filter: JobFilter | None = None) -> JobFacets:
        scope = (filter or JobFilter()).to_service(info.context.tenant_id)
        try:
            async with read_only(info.context.state.sessionmaker) as session:
                f = await queries.facets(session=session, filter=scope)
        except DomainError as exc:
            raise _bad(exc) from None
        return JobFacets(
            by_status=[JobCount(key=k, count=v) for k, v in f.by_status.items()],
            by_type=[JobCount(key=k, count=v) for k, v in f.by_type.items()],
        )

    @strawberry.field(permission_classes=[CanRead], description="One job, or null.")
    async def job(self, info: Info, id: uuid.UUID) -> Job | None:
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                row = await actions.get_job(
                    session=session, job_id=id, tenant_id=info.context.tenant_id
                )
            except NotFound:
                return None
        return Job(row=row)

    @strawberry.field(permission_classes=[CanRead])
    def job_types(self) -> list[JobTypeInfo]:
        return [
            JobTypeInfo(type=t.type, description=t.description, supports_abort=t.supports_abort)
            for t in types.JOB_TYPES.values()
        ]

    @strawberry.field(permission_classes=[CanRead])
    async def job_stats(self, info: Info) -> JobStats:
        async with read_only(info.context.state.sessionmaker) as session:
            s = await queries.stats(session=session, tenant_id=info.context.tenant_id)
        return JobStats(
            total_jobs=s.total_jobs,
            by_status=[JobCount(key=k, count=v) for k, v in s.by_status.items()],
            by_type=[JobCount(key=k, count=v) for k, v in s.by_type.items()],
            avg_duration_seconds=s.avg_duration_seconds,
            jobs_today=s.jobs_today,
            jobs_this_hour=s.jobs_this_hour,
        )


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


def _failed(exc: DomainError) -> JobPayload:
    return JobPayload(
        job=None, errors=[JobError(field=exc.field, code=exc.code, message=exc.message)]
    )


@strawberry.type
class JobMutations:
    @strawberry.mutation(permission_classes=[CanOperate])
    async def start_job(self, info: Info, type: str, params: JSON | None = None) -> JobPayload:
        ctx = info.context
        try:
            if params is not None and not isinstance(params, dict):
                raise InvalidInput("params must be a JSON object", field="params")
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await actions.start_job(
                    session=session,
                    job_type=type,
                    params=dict(cast(dict[str, Any], params or {})),
                    actor=ctx.principal.subject if ctx.principal else "?",
                    tenant_id=ctx.tenant_id,
                    is_admin=bool(ctx.principal and ctx.principal.can(Permission.ADMIN)),
                )
        except DomainError as exc:
            return _failed(exc)
        return JobPayload(job=Job(row=row), errors=[])

    @strawberry.mutation(permission_classes=[CanOperate], description="A pending job.")
    async def cancel_job(self, info: Info, id: uuid.UUID) -> JobPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await actions.cancel_job(session=session, job_id=id, tenant_id=ctx.tenant_id)
        except DomainError as exc:
            return _failed(exc)
        return JobPayload(job=Job(row=row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="A running, abortable job: its worker stops; it ends CANCELLED.",
    )
    async def abort_job(self, info: Info, id: uuid.UUID) -> JobPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await actions.abort_job(session=session, job_id=id, tenant_id=ctx.tenant_id)
        except DomainError as exc:
            return _failed(exc)
        return JobPayload(job=Job(row=row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Each job stopped as it can be (pending: cancelled; running: aborted).",
    )
    async def bulk_cancel_jobs(self, info: Info, ids: list[uuid.UUID]) -> BulkCancelPayload:
        ctx = info.context
        if len(ids) > actions.MAX_BULK:
            raise GraphQLError(
                f"at most {actions.MAX_BULK} jobs", extensions={"code": "BAD_USER_INPUT"}
            )
        results = []
        for job_id in dict.fromkeys(ids):
            try:
                async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
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

        async def load() -> TaskRow:
            async with read_only(ctx.state.sessionmaker) as session:
                return await actions.get_job(session=session, job_id=id, tenant_id=tenant)

        async with ctx.state.broker.subscribe(predicate) as sub:
            try:
                row = await load()
            except NotFound as exc:
                raise GraphQLError(exc.message, extensions={"code": "NOT_FOUND"}) from exc
            yield Job(row=row)
            if row.status in ("COMPLETED", "FAILED", "CANCELLED"):
                return
            async for _ in sub:
                row = await load()
                yield Job(row=row)
                if row.status in ("COMPLETED", "FAILED", "CANCELLED"):
                    return
