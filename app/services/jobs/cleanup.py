"""The cleanup job: retention for finished tasks (their transitions and logs go with them),
agent logs, metric samples and export files. Deletes go in bounded batches, each committed on
its own, so stopping half-way leaves nothing inconsistent and the next run continues."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.models import AgentLog, AgentSample, Task
from app.services.jobs.config import JobsConfig

BATCH = 5000
# tasks other records point at (pipeline stages, workflow steps) stay with those records
CLEANABLE_TYPES = ("llm", "echo", "export", "cleanup", "ai_processing", "evaluation", "prompt_test")
Progress = Callable[[float, str], Awaitable[None]]


async def _drain(sessionmaker: async_sessionmaker[AsyncSession], model: Any, where: Any) -> int:
    removed = 0
    while True:
        async with sessionmaker() as session, session.begin():
            ids = select(model.id).where(*where).limit(BATCH).scalar_subquery()
            done = await session.execute(delete(model).where(model.id.in_(ids)))
            n = cast(CursorResult[Any], done).rowcount
        removed += int(n or 0)
        if not n or n < BATCH:
            return removed


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    config: JobsConfig,
    params: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    days = params.get("older_than_days")
    now = utcnow()

    def cutoff(default_days: float) -> Any:
        return now - timedelta(days=float(days if days is not None else default_days))

    out: dict[str, Any] = {}
    await progress(0.0, "cleaning finished tasks")
    out["tasks"] = await _drain(
        sessionmaker,
        Task,
        (
            Task.status.in_(("COMPLETED", "FAILED", "CANCELLED")),
            Task.completed_at < cutoff(config.task_retention_days),
            Task.task_type.in_(CLEANABLE_TYPES),
            Task.workflow_id.is_(None),
        ),
    )
    await progress(25.0, f"{out['tasks']} tasks removed; cleaning agent logs")
    out["agent_logs"] = await _drain(
        sessionmaker, AgentLog, (AgentLog.at < cutoff(config.log_retention_days),)
    )
    await progress(50.0, f"{out['agent_logs']} log lines removed; cleaning metric samples")
    out["metric_samples"] = await _drain(
        sessionmaker, AgentSample, (AgentSample.at < cutoff(config.metric_retention_days),)
    )
    await progress(75.0, f"{out['metric_samples']} samples removed; cleaning export files")
    horizon = cutoff(config.export_retention_days).timestamp()
    files = 0
    if config.exports_dir.exists():
        for path in config.exports_dir.iterdir():
            if path.is_file() and path.stat().st_mtime < horizon:
                path.unlink(missing_ok=True)
                files += 1
    out["export_files"] = files
    return out
