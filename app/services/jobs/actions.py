"""Starting and stopping jobs: start (validated, then a task of the lifecycle), cancel (a
queued job), abort (a running, abortable job: its worker stops and the job ends cancelled),
the unified stop of DELETE, and bulk cancel with a result per job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.kernel.errors import DomainError, InvalidInput, NotFound
from app.services.jobs import types
from app.services.jobs.config import config_of
from app.services.monitoring import exports as metric_exports
from app.services.tasks import commands as tasks
from app.services.tasks import submissions as task_submissions
from app.services.tasks.specs import TaskSpec

MAX_BULK = 1000


class NotAllowed(DomainError):
    """The caller's credential may not start this job (403)."""

    code = "insufficient_permissions"


class JobConflict(DomainError):
    """The job is not in a state that allows this (409)."""

    code = "job_conflict"


@dataclass(frozen=True)
class Stopped:
    job: Task
    action: str  # cancelled | aborted
    previous_status: str  # seed word


async def get_job(
    *, session: AsyncSession, job_id: uuid.UUID, tenant_id: str | None, for_update: bool = False
) -> Task:
    """A task of a background type; any other id (or another tenant's job) is not a job."""
    try:
        task = await tasks.get_task(
            session=session, task_id=job_id, tenant_id=tenant_id, for_update=for_update
        )
    except NotFound:
        task = None
    if task is None or task.task_type not in types.JOB_TYPES:
        raise NotFound(f"job {job_id} not found", field="job_id", code="job_not_found")
    return task


async def start_job(
    *,
    session: AsyncSession,
    job_type: str,
    params: dict[str, Any],
    actor: str,
    tenant_id: str | None,
    is_admin: bool,
) -> Task:
    """`is_admin`: the caller holds the admin role (cleanup deletes installation-wide history,
    as the admin-only statistics reset does, so it needs as much)."""
    kind = types.job_type(job_type)
    if not isinstance(params, dict):
        raise InvalidInput("params must be a JSON object", field="params")
    if kind.type == "cleanup" and not is_admin:
        raise NotAllowed("a cleanup job needs an admin role", field="job_type")
    operation = types.validate(kind, params)
    if tenant_id is not None and (
        kind.type in ("cleanup", "ai_processing") or operation == "security_events"
    ):
        raise NotAllowed(
            "installation-wide data: not for tenant-scoped credentials", field="job_type"
        )
    if kind.type == "export" and operation == "metrics":
        since, until = params.get("since"), params.get("until")
        if since is None or until is None:
            raise InvalidInput(
                "a metrics export needs params.since and params.until", field="params.since"
            )
        return await metric_exports.start(
            session=session,
            request=metric_exports.ExportRequest(
                metrics=list(params.get("metrics") or []),
                start=datetime.fromisoformat(since),
                end=datetime.fromisoformat(until),
                format=params.get("format", "csv"),
                granularity=params.get("granularity", "hour"),
                agent_id=params.get("agent_id"),
            ),
            tenant_id=tenant_id,
            actor=actor,
        )
    config = config_of(session)
    return await task_submissions.submit_task(
        session=session,
        spec=TaskSpec(
            task_type=kind.type,
            operation=operation,
            queue=config.queue,
            input={**params, "tenant_id": tenant_id},
            metadata={"requested_by": actor, **_describe(kind.type, params)},
            origin_instance="jobs",
            origin_tenant_id=tenant_id,
            system=True,
        ),
        defaults=config.task_defaults,
    )


def _describe(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    if kind == "export":
        return {
            "target": params.get("target", "security_events"),
            "format": params.get("format", "csv"),
        }
    return {"older_than_days": params.get("older_than_days"), "force": bool(params.get("force"))}


async def cancel_job(*, session: AsyncSession, job_id: uuid.UUID, tenant_id: str | None) -> Task:
    job = await get_job(session=session, job_id=job_id, tenant_id=tenant_id, for_update=True)
    if job.status == "RUNNING":
        raise JobConflict(
            f"job {job_id} is running: abort it instead"
            if types.JOB_TYPES[job.task_type].supports_abort
            else f"job {job_id} is running and {job.task_type} jobs cannot be aborted",
            field="job_id",
        )
    if job.status != "QUEUED":
        raise JobConflict(f"Job already {types.STATUS_WORDS[job.status]}", field="job_id")
    return await tasks.cancel_task(
        session=session, task_id=job.id, tenant_id=tenant_id, reason="job cancelled by request"
    )


async def abort_job(*, session: AsyncSession, job_id: uuid.UUID, tenant_id: str | None) -> Task:
    job = await get_job(session=session, job_id=job_id, tenant_id=tenant_id, for_update=True)
    if not types.JOB_TYPES[job.task_type].supports_abort:
        raise JobConflict(f"{job.task_type} jobs cannot be aborted", field="job_id")
    if job.status != "RUNNING":
        raise JobConflict(
            f"job {job_id} is {types.STATUS_WORDS[job.status]}, not running"
            + (": cancel it instead" if job.status == "QUEUED" else ""),
            field="job_id",
        )
    return await tasks.cancel_task(
        session=session, task_id=job.id, tenant_id=tenant_id, reason="job aborted by request"
    )


async def stop_job(*, session: AsyncSession, job_id: uuid.UUID, tenant_id: str | None) -> Stopped:
    """DELETE: cancel a queued job, abort a running abortable one; 409 otherwise."""
    job = await get_job(session=session, job_id=job_id, tenant_id=tenant_id)
    previous = types.STATUS_WORDS[job.status]
    if job.status == "RUNNING":
        return Stopped(
            await abort_job(session=session, job_id=job_id, tenant_id=tenant_id),
            "aborted",
            previous,
        )
    return Stopped(
        await cancel_job(session=session, job_id=job_id, tenant_id=tenant_id), "cancelled", previous
    )
