"""Background job handlers (seed 002's jobs): exports stream to a file with progress and stop
at once when aborted (the runner cancels the attempt; the partial file is removed); cleanup
applies retention in committed batches. Each logs what it does to the job's log."""

from __future__ import annotations

from typing import Any

from app.db.models import Task
from app.edge.uow import read_only
from app.services.jobs import cleanup as retention
from app.services.jobs import exports as job_exports
from app.services.monitoring import exports as metric_exports
from app.services.tasks import commands as tasks
from app.services.tasks.commands import Usage
from workers.context import WorkerState


async def log_line(state: WorkerState, task: Task, message: str, level: str = "info") -> None:
    async with state.unit_of_work() as session:
        await tasks.append_log(session=session, task_id=task.id, message=message, level=level)


async def progress_line(state: WorkerState, task: Task, value: float, message: str) -> None:
    async with state.unit_of_work() as session:
        await tasks.set_progress(
            session=session,
            task_id=task.id,
            worker_name=state.name,
            progress=value,
            message=message,
        )
        await tasks.append_log(session=session, task_id=task.id, message=message)


async def export(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    await log_line(state, task, f"starting {task.operation} export")
    async with read_only(state.sessionmaker) as session:
        if task.operation == "metrics":
            result = await metric_exports.write(session, task)
        else:

            async def progress(value: float, message: str) -> None:
                await progress_line(state, task, value, message)

            result = await job_exports.write(session, task, progress)
    await log_line(state, task, f"export done: {result.get('rows')} rows in {result.get('file')}")
    return result, Usage(provider="opsgraph")


async def cleanup(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    async def progress(value: float, message: str) -> None:
        await progress_line(state, task, value, message)

    result = await retention.run(state.sessionmaker, state.settings.jobs, task.input, progress)
    await log_line(state, task, "cleanup done: " + ", ".join(f"{k} {v}" for k, v in result.items()))
    return result, Usage(provider="opsgraph")
