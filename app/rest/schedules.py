"""Schedules over REST (/api/v1/schedules, beyond the seeds): create, read, change, pause,
resume, trigger and delete, in the caller's tenant; bad input is seed 001's 422 naming the
field."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.db.models import Schedule, ScheduleFire
from app.platform import clock
from app.rest.deps import Operator, Reader, State
from app.rest.refusals import Refusals, reading, writing
from app.rest.workflows import WorkflowIn, spec_of
from app.services.schedules import commands, queries
from app.services.schedules.cron import CatchUp, Overlap

router = APIRouter(prefix="/api/v1/schedules", tags=["Schedules"])
refuse = Refusals(nested=True, renamed={"taskType": "task_type", "catchUp": "catch_up"})


class ScheduleIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    cron: str = Field(min_length=1, max_length=255, description="Five fields, minute first.")
    timezone: str = Field("UTC", max_length=64)
    task_type: str | None = Field(None, max_length=100)
    input: dict[str, Any] = Field(default_factory=dict)
    workflow: WorkflowIn | None = None
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.NONE
    paused: bool = False


class RunOut(BaseModel):
    fire_time: datetime
    outcome: str
    manual: bool
    message: str | None
    task_id: uuid.UUID | None
    workflow_id: uuid.UUID | None


class ScheduleOut(BaseModel):
    id: uuid.UUID
    name: str
    cron: str
    timezone: str
    task_type: str | None
    input: dict[str, Any]
    workflow: dict[str, Any] | None
    overlap: Overlap
    catch_up: CatchUp
    paused: bool
    tenant_id: str | None
    created_by: str | None
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    next_fire_times: list[datetime]
    created_at: datetime
    updated_at: datetime
    runs: list[RunOut] | None = None


class ScheduleList(BaseModel):
    items: list[ScheduleOut]
    total: int


def _out(row: Schedule, runs: list[ScheduleFire] | None = None) -> ScheduleOut:
    return ScheduleOut(
        id=row.id,
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        task_type=row.task_type,
        input=row.input,
        workflow=row.workflow,
        overlap=Overlap(row.overlap),
        catch_up=CatchUp(row.catch_up),
        paused=row.paused,
        tenant_id=row.tenant_id,
        created_by=row.created_by,
        next_fire_at=row.next_fire_at,
        last_fire_at=row.last_fire_at,
        next_fire_times=queries.next_fire_times(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        runs=[_run(r) for r in runs] if runs is not None else None,
    )


def _run(row: ScheduleFire) -> RunOut:
    return RunOut(
        fire_time=row.fire_time,
        outcome=row.outcome,
        manual=row.manual,
        message=row.message,
        task_id=row.task_id,
        workflow_id=row.workflow_id,
    )


def _spec(body: ScheduleIn, principal: Any) -> commands.ScheduleSpec:
    return commands.ScheduleSpec(
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        task_type=body.task_type,
        input=body.input,
        workflow=spec_of(body.workflow, principal) if body.workflow is not None else None,
        overlap=body.overlap,
        catch_up=body.catch_up,
        paused=body.paused,
    )


@router.get("", summary="List Schedules")
async def list_schedules(state: State, principal: Reader) -> ScheduleList:
    async with reading(state, refuse) as session:
        rows = await queries.list_schedules(session=session, tenant_id=principal.tenant_id)
    return ScheduleList(items=[_out(r) for r in rows], total=len(rows))


@router.post("", status_code=201, summary="Create Schedule")
async def create_schedule(body: ScheduleIn, state: State, principal: Operator) -> ScheduleOut:
    spec = _spec(body, principal)
    async with writing(state, refuse) as session:
        row = await commands.create_schedule(
            session=session,
            spec=spec,
            rules=state.settings.schedules,
            tenant_id=principal.tenant_id,
            actor=principal.subject,
            now=clock.now(),
        )
    return _out(row)


@router.get("/{schedule_id}", summary="Get Schedule (with its latest runs)")
async def get_schedule(schedule_id: uuid.UUID, state: State, principal: Reader) -> ScheduleOut:
    async with reading(state, refuse) as session:
        row = await commands.get_schedule(
            session=session, schedule_id=schedule_id, tenant_id=principal.tenant_id
        )
        runs = await queries.runs_of(session=session, schedule_id=row.id)
    return _out(row, runs)


@router.put("/{schedule_id}", summary="Replace Schedule")
async def update_schedule(
    schedule_id: uuid.UUID, body: ScheduleIn, state: State, principal: Operator
) -> ScheduleOut:
    spec = _spec(body, principal)
    async with writing(state, refuse) as session:
        row = await commands.update_schedule(
            session=session,
            schedule_id=schedule_id,
            spec=spec,
            rules=state.settings.schedules,
            tenant_id=principal.tenant_id,
            now=clock.now(),
        )
    return _out(row)


@router.post("/{schedule_id}/pause", summary="Pause Schedule")
async def pause_schedule(schedule_id: uuid.UUID, state: State, principal: Operator) -> ScheduleOut:
    return await _paused(state, principal, schedule_id, paused=True)


@router.post("/{schedule_id}/resume", summary="Resume Schedule")
async def resume_schedule(schedule_id: uuid.UUID, state: State, principal: Operator) -> ScheduleOut:
    return await _paused(state, principal, schedule_id, paused=False)


async def _paused(
    state: Any, principal: Any, schedule_id: uuid.UUID, *, paused: bool
) -> ScheduleOut:
    async with writing(state, refuse) as session:
        row = await commands.set_paused(
            session=session,
            schedule_id=schedule_id,
            paused=paused,
            tenant_id=principal.tenant_id,
            now=clock.now(),
        )
    return _out(row)


@router.post("/{schedule_id}/trigger", summary="Run Schedule Now")
async def trigger_schedule(schedule_id: uuid.UUID, state: State, principal: Operator) -> RunOut:
    async with writing(state, refuse) as session:
        fire = await commands.trigger_schedule(
            session=session,
            schedule_id=schedule_id,
            rules=state.settings.schedules,
            tenant_id=principal.tenant_id,
            now=clock.now(),
        )
    return _run(fire)


@router.delete("/{schedule_id}", summary="Delete Schedule")
async def delete_schedule(schedule_id: uuid.UUID, state: State, principal: Operator) -> ScheduleOut:
    async with writing(state, refuse) as session:
        row = await commands.delete_schedule(
            session=session, schedule_id=schedule_id, tenant_id=principal.tenant_id
        )
    return _out(row)
