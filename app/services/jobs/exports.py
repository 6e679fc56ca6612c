"""Export jobs: security events, tasks or agent logs streamed from PostgreSQL (a server-side
cursor, a batch at a time) into a CSV or JSON file under the exports folder, with progress as
it goes. The file is written aside and renamed when whole; a failed or aborted export leaves
nothing behind."""

from __future__ import annotations

import asyncio
import csv
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AgentLog, SecurityEvent, Task
from app.kernel import export_files
from app.services.jobs.config import config_of

BATCH = 500
Progress = Callable[[float, str], Awaitable[None]]

COLUMNS: dict[str, tuple[Any, ...]] = {
    "security_events": (
        SecurityEvent.id,
        SecurityEvent.batch_id,
        SecurityEvent.camera_id,
        SecurityEvent.risk_score,
        SecurityEvent.risk_level,
        SecurityEvent.summary,
        SecurityEvent.detection_count,
        SecurityEvent.model_name,
        SecurityEvent.input_tokens,
        SecurityEvent.output_tokens,
        SecurityEvent.latency_ms,
        SecurityEvent.started_at,
        SecurityEvent.ended_at,
        SecurityEvent.created_at,
    ),
    "tasks": (
        Task.id,
        Task.task_type,
        Task.operation,
        Task.status,
        Task.queue,
        Task.priority,
        Task.attempts,
        Task.provider,
        Task.input_tokens,
        Task.output_tokens,
        Task.cost_usd,
        Task.created_at,
        Task.started_at,
        Task.completed_at,
    ),
    "logs": (
        AgentLog.id,
        AgentLog.at,
        AgentLog.level,
        AgentLog.agent_id,
        AgentLog.message,
        AgentLog.trace_id,
        AgentLog.context,
    ),
}
LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


def path_of(exports_dir: Path, job_id: Any, target: str, fmt: str) -> Path:
    return exports_dir / f"{target}-{job_id}.{fmt}"


def _instant(value: str | None) -> datetime | None:
    """A job's date-time parameter; a naive one is UTC (never the worker's local time)."""
    if not value:
        return None
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _query(target: str, params: dict[str, Any]) -> Select[Any]:
    columns = COLUMNS[target]
    stmt: Select[Any] = select(*columns)
    since, until = _instant(params.get("since")), _instant(params.get("until"))
    tenant = params.get("tenant_id")
    when: Any
    key: Any
    if target == "security_events":
        when, key = SecurityEvent.created_at, SecurityEvent.id
        if params.get("camera_id"):
            stmt = stmt.where(SecurityEvent.camera_id == params["camera_id"])
        if params.get("min_risk_score") is not None:
            stmt = stmt.where(SecurityEvent.risk_score >= int(params["min_risk_score"]))
    elif target == "tasks":
        when, key = Task.created_at, Task.id
        if tenant is not None:
            stmt = stmt.where(Task.origin_tenant_id == tenant)
        if params.get("queue"):
            stmt = stmt.where(Task.queue == params["queue"])
        if params.get("status"):
            stmt = stmt.where(Task.status == str(params["status"]).upper())
    else:
        when, key = AgentLog.at, AgentLog.id
        if tenant is not None:
            stmt = stmt.where(AgentLog.tenant_id == tenant)
        if params.get("agent_id"):
            stmt = stmt.where(AgentLog.agent_id == params["agent_id"])
        if params.get("level") in LEVELS:
            stmt = stmt.where(AgentLog.level_no >= LEVELS[params["level"]])
    if since is not None:
        stmt = stmt.where(when >= since)
    if until is not None:
        stmt = stmt.where(when <= until)
    return stmt.order_by(when, key)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return str(value)


async def write(session: AsyncSession, job: Task, progress: Progress) -> dict[str, Any]:
    """Stream the export; answer the job's result. Any exception (an abort included) removes
    this attempt's partial file before it propagates."""
    params = job.input
    target, fmt = params.get("target", "security_events"), params.get("format", "csv")
    pause = int(params.get("pause_ms", 0)) / 1000
    stmt = _query(target, params)
    total = int(
        (
            await session.execute(select(func.count()).select_from(stmt.order_by(None).subquery()))
        ).scalar_one()
    )
    names = [c.key for c in COLUMNS[target]]
    path = path_of(config_of(session).exports_dir, job.id, target, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = export_files.attempt_file(path)
    written = 0
    try:
        with partial.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f) if fmt == "csv" else None
            if writer is not None:
                writer.writerow(names)
            else:
                f.write("[")
            await progress(0.0, f"exporting {total} {target} as {fmt}")
            result = await session.stream(stmt.execution_options(yield_per=BATCH))
            async for batch in result.partitions(BATCH):
                for row in batch:
                    cells = [_cell(v) for v in row]
                    if writer is not None:
                        writer.writerow([export_files.csv_safe(c) for c in cells])
                    else:
                        f.write(("," if written else "") + "\n")
                        f.write(json.dumps(dict(zip(names, cells, strict=True))))
                    written += 1
                f.flush()
                await progress(
                    round(written / total * 100, 1) if total else 100.0,
                    f"{written} of {total} rows written",
                )
                if pause:
                    await asyncio.sleep(pause)
            if writer is None:
                f.write("\n]\n")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {
        "target": target,
        "format": fmt,
        "rows": written,
        "file": path.name,
        "bytes": path.stat().st_size,
    }


def file_of(session: AsyncSession, job: Task) -> Path | None:
    """The finished export's file, if the job is a finished export whose file is still there."""
    if job.task_type != "export" or job.status != "COMPLETED":
        return None
    result = job.result or {}
    name = result.get("file")
    if not isinstance(name, str):
        return None
    exports_dir = config_of(session).exports_dir
    path = exports_dir / Path(name).name
    return path if path.exists() else None
