"""Schedules: cron schedules that start a task or a workflow, their next ticks and runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.db.models import Schedule as ScheduleRow
from app.db.models import ScheduleFire
from app.gql.context import Context, Info
from app.gql.errors import CaptureErrors, acted, json_object
from app.gql.permissions import CanOperate, CanRead
from app.gql.reads import live
from app.gql.types import Task, TaskError
from app.gql.workflow_types import Workflow
from app.gql.workflows import CreateWorkflowInput, _spec
from app.kernel.errors import NotFound
from app.platform import clock
from app.services.schedules import commands, queries
from app.services.schedules.cron import CatchUp, Overlap

strawberry.enum(
    Overlap, name="ScheduleOverlap", description="A fire while the previous run is unfinished."
)
strawberry.enum(CatchUp, name="ScheduleCatchUp", description="Ticks missed while no worker ran.")


@strawberry.type
class ScheduleRun:
    row: strawberry.Private[ScheduleFire]
    fire_time: datetime
    outcome: str = strawberry.field(description="STARTED, SKIPPED, MISSED or FAILED.")
    manual: bool = strawberry.field(description="Started by triggerSchedule.")
    message: str | None

    @classmethod
    def of(cls, row: ScheduleFire) -> ScheduleRun:
        return cls(
            row=row,
            fire_time=row.fire_time,
            outcome=row.outcome,
            manual=row.manual,
            message=row.message,
        )

    @strawberry.field
    async def task(self, info: Info) -> Task | None:
        if self.row.task_id is None:
            return None
        found = await info.context.loaders.tasks.load(self.row.task_id)
        return Task.of(found) if found is not None else None

    @strawberry.field
    async def workflow(self, info: Info) -> Workflow | None:
        if self.row.workflow_id is None:
            return None
        key = (info.context.tenant_id, self.row.workflow_id)
        found = await info.context.loaders.workflows.load(key)
        return Workflow.of(found) if found is not None else None


@strawberry.type
class Schedule:
    row: strawberry.Private[ScheduleRow]
    id: uuid.UUID
    name: str
    cron: str
    timezone: str
    task_type: str | None
    input: JSON
    workflow: JSON | None = strawberry.field(description="The workflow each fire creates.")
    overlap: Overlap
    catch_up: CatchUp
    paused: bool
    tenant_id: str | None
    created_by: str | None
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ScheduleRow) -> Schedule:
        return cls(
            row=row,
            id=row.id,
            name=row.name,
            cron=row.cron,
            timezone=row.timezone,
            task_type=row.task_type,
            input=cast(JSON, row.input),
            workflow=cast(JSON, row.workflow),
            overlap=Overlap(row.overlap),
            catch_up=CatchUp(row.catch_up),
            paused=row.paused,
            tenant_id=row.tenant_id,
            created_by=row.created_by,
            next_fire_at=row.next_fire_at,
            last_fire_at=row.last_fire_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Its next five ticks (none while paused).")
    def next_fire_times(self) -> list[datetime]:
        return queries.next_fire_times(self.row)

    @strawberry.field(description=f"Its fires, newest first (at most {queries.MAX_RUNS}).")
    async def runs(self, info: Info, limit: int = 20) -> list[ScheduleRun]:
        async with info.context.reading() as session:
            rows = await queries.runs_of(session=session, schedule_id=self.id, limit=limit)
        return [ScheduleRun.of(r) for r in rows]


@strawberry.input
class CreateScheduleInput:
    name: str
    cron: str = strawberry.field(description="Five fields, minute first (`0 * * * *`).")
    timezone: str = "UTC"
    task_type: str | None = strawberry.field(
        default=None, description="What each fire submits (with `input`); or give `workflow`."
    )
    input: JSON | None = None
    workflow: CreateWorkflowInput | None = None
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.NONE
    paused: bool = False


@strawberry.type
class SchedulePayload:
    schedule: Schedule | None
    errors: list[TaskError]


@strawberry.type
class ScheduleRunPayload:
    run: ScheduleRun | None
    errors: list[TaskError]


def _schedule_spec(input: CreateScheduleInput, ctx: Context) -> commands.ScheduleSpec:
    return commands.ScheduleSpec(
        name=input.name,
        cron=input.cron,
        timezone=input.timezone,
        task_type=input.task_type,
        input=json_object(input.input, "input"),
        workflow=_spec(input.workflow, ctx) if input.workflow is not None else None,
        overlap=input.overlap,
        catch_up=input.catch_up,
        paused=input.paused,
    )


@strawberry.type
class ScheduleQueries:
    @strawberry.field(permission_classes=[CanRead], description="Newest first.")
    async def schedules(self, info: Info) -> list[Schedule]:
        async with info.context.reading() as session:
            rows = await queries.list_schedules(session=session, tenant_id=info.context.tenant_id)
        return [Schedule.of(r) for r in rows]

    @strawberry.field(permission_classes=[CanRead])
    async def schedule(self, info: Info, id: uuid.UUID) -> Schedule | None:
        async with info.context.reading() as session:
            try:
                row = await commands.get_schedule(
                    session=session, schedule_id=id, tenant_id=info.context.tenant_id
                )
            except NotFound:
                return None
        return Schedule.of(row)


@strawberry.type
class ScheduleMutations:
    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def create_schedule(self, info: Info, input: CreateScheduleInput) -> SchedulePayload:
        ctx = info.context
        spec = _schedule_spec(input, ctx)
        async with ctx.writing() as session:
            row = await commands.create_schedule(
                session=session,
                spec=spec,
                rules=ctx.state.settings.schedules,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                now=clock.now(),
            )
        return SchedulePayload(schedule=Schedule.of(row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Replace its definition; its next tick is computed again from now.",
        extensions=[CaptureErrors()],
    )
    async def update_schedule(
        self, info: Info, id: uuid.UUID, input: CreateScheduleInput
    ) -> SchedulePayload:
        ctx = info.context
        spec = _schedule_spec(input, ctx)
        return await acted(
            info,
            commands.update_schedule,
            SchedulePayload,
            Schedule.of,
            schedule_id=id,
            spec=spec,
            rules=ctx.state.settings.schedules,
            now=clock.now(),
        )

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def pause_schedule(self, info: Info, id: uuid.UUID) -> SchedulePayload:
        return await acted(
            info, commands.set_paused, SchedulePayload, Schedule.of, schedule_id=id, paused=True
        )

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Fires again from its next tick (ticks missed while paused do not run).",
        extensions=[CaptureErrors()],
    )
    async def resume_schedule(self, info: Info, id: uuid.UUID) -> SchedulePayload:
        return await acted(
            info,
            commands.set_paused,
            SchedulePayload,
            Schedule.of,
            schedule_id=id,
            paused=False,
            now=clock.now(),
        )

    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Run it now (a manual fire, among its runs).",
        extensions=[CaptureErrors()],
    )
    async def trigger_schedule(self, info: Info, id: uuid.UUID) -> ScheduleRunPayload:
        ctx = info.context
        return await acted(
            info,
            commands.trigger_schedule,
            ScheduleRunPayload,
            ScheduleRun.of,
            schedule_id=id,
            rules=ctx.state.settings.schedules,
            now=clock.now(),
        )

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def delete_schedule(self, info: Info, id: uuid.UUID) -> SchedulePayload:
        return await acted(
            info, commands.delete_schedule, SchedulePayload, Schedule.of, schedule_id=id
        )


@strawberry.type
class ScheduleSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="A schedule of the caller's each time it changes or fires.",
    )
    async def schedule_changed(self, info: Info) -> AsyncGenerator[Schedule, None]:
        tenant = info.context.tenant_id

        def wanted(e: Any) -> bool:
            return e.kind == commands.SCHEDULE_KIND and (
                tenant is None or e.data.get("tenant_id") == tenant
            )

        async def load(session: Any, e: Any) -> ScheduleRow:
            return await commands.get_schedule(
                session=session, schedule_id=uuid.UUID(e.key), tenant_id=tenant
            )

        async for found in live(info, wanted, load, Schedule.of):
            yield found
