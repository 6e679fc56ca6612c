"""Replay with an edited input: a FAILED or CANCELLED task put back in its queue with a new
input, checked as a submission's is (its type's schema, opsgraph's own rules); the task keeps
its history, and its log says from which attempt on it runs with which input (the one it
replaced is kept in that line's fields)."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.services.tasks import commands
from app.services.tasks import specs as task_specs
from app.services.tasks.submissions import know_types
from app.services.tasks.types import SYSTEM_TYPES


async def retry_task(
    *,
    session: AsyncSession,
    task_id: uuid.UUID,
    tenant_id: str | None = None,
    input: dict[str, Any] | None = None,
    defaults: task_specs.TaskDefaults = task_specs.TaskDefaults(),
    reason: str = "retried by request",
) -> Task:
    """`commands.retry_task`, with `input` (when given) replacing the task's, refused naming
    the field (nothing changed) when its type would refuse it."""
    if input is None:
        return await commands.retry_task(
            session=session, task_id=task_id, tenant_id=tenant_id, reason=reason
        )
    task = await commands.get_task(
        session=session, task_id=task_id, tenant_id=tenant_id, for_update=True
    )
    await know_types([task.task_type], lambda: nullcontext(session))
    valid = task_specs.validate(
        task_specs.TaskSpec(
            task_type=task.task_type,
            operation=task.operation,
            queue=task.queue,
            input=input,
            system=task.task_type in SYSTEM_TYPES,
        ),
        defaults,
    )
    replaced = task.input
    # a key its type reads from the input follows the new input (before the job's markers go)
    if valid.concurrency_key is not None:
        task.concurrency_key, task.concurrency_limit = (
            valid.concurrency_key,
            valid.concurrency_limit,
        )
    if valid.rate_key is not None:
        task.rate_key, task.rate_limit = valid.rate_key, valid.rate_limit
    task.input = input
    task = await commands.retry_task(
        session=session, task_id=task_id, tenant_id=tenant_id, reason=f"{reason}, with a new input"
    )
    await commands.append_log(
        session=session,
        task_id=task.id,
        message="retried with a new input: the next attempts run with it",
        fields={"replaced_input": replaced},
    )
    await session.flush()
    commands.changed(session, task)
    return task
