"""Metric exports: a task of the one lifecycle (queued, retried, cancellable like any other)
whose worker writes the series as CSV or JSON under <data_dir>/exports. The file appears
whole or not at all (written aside, then renamed), so a download never sees half of one."""

from __future__ import annotations

import csv
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.kernel import export_files
from app.kernel.errors import DomainError, InvalidInput, NotFound
from app.services.monitoring import metrics
from app.services.monitoring.config import config_of
from app.services.tasks import commands as tasks
from app.services.tasks import submissions as task_submissions
from app.services.tasks.specs import TaskSpec

FORMATS = ("csv", "json")
COLUMNS = {
    "requests": ("requests",),
    "errors": ("errors",),
    "latency": ("avg_latency_ms", "p95_latency_ms"),
    "tokens": ("input_tokens", "output_tokens"),
}


class ExportNotReady(DomainError):
    code = "export_not_ready"


@dataclass(frozen=True)
class ExportRequest:
    metrics: list[str]
    start: datetime
    end: datetime
    format: str = "csv"
    granularity: str = "hour"
    agent_id: str | None = None


def _validate(req: ExportRequest) -> list[str]:
    chosen = list(dict.fromkeys(req.metrics)) or list(metrics.FAMILIES)
    for m in chosen:
        metrics.families(m)  # InvalidMetric for an unknown one
    if req.format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    if req.granularity not in metrics.GRANULARITIES:
        raise InvalidInput(
            f"granularity must be one of {', '.join(metrics.GRANULARITIES)}", field="granularity"
        )
    if req.end < req.start:
        raise InvalidInput("period.end is before period.start", field="period")
    if (req.end - req.start) / metrics.GRANULARITIES[req.granularity] > metrics.MAX_EXPORT_BUCKETS:
        raise InvalidInput(
            f"more than {metrics.MAX_EXPORT_BUCKETS} points; choose a coarser granularity",
            field="granularity",
        )
    return chosen


async def start(
    *, session: AsyncSession, request: ExportRequest, tenant_id: str | None, actor: str
) -> Task:
    chosen = _validate(request)
    config = config_of(session)
    return await task_submissions.submit_task(
        session=session,
        spec=TaskSpec(
            task_type="export",
            operation="metrics",
            queue=config.queue,
            input={
                "metrics": chosen,
                "start": request.start.isoformat(),
                "end": request.end.isoformat(),
                "format": request.format,
                "granularity": request.granularity,
                "agent_id": request.agent_id,
                "tenant_id": tenant_id,
            },
            metadata={"requested_by": actor},
            origin_instance="monitoring",
            origin_tenant_id=tenant_id,
            system=True,
        ),
        defaults=config.task_defaults,
    )


def path_of(exports_dir: Path, task_id: uuid.UUID, fmt: str) -> Path:
    return exports_dir / f"metrics-{task_id}.{fmt}"


async def write(session: AsyncSession, task: Task) -> dict[str, Any]:
    """The worker's part: compute the series and write the file; returns the task's result."""
    spec = task.input
    chosen = [m for m in spec["metrics"] if m in COLUMNS]
    buckets = await metrics.series(
        session,
        start=datetime.fromisoformat(spec["start"]),
        end=datetime.fromisoformat(spec["end"]),
        granularity=spec["granularity"],
        scope=metrics.Scope(agent_id=spec.get("agent_id"), tenant_id=spec.get("tenant_id")),
    )
    columns = ["timestamp", *(c for m in chosen for c in COLUMNS[m])]
    rows = [
        {
            "timestamp": b.timestamp.isoformat(),
            **{c: getattr(b, c) for c in columns[1:]},
        }
        for b in buckets
    ]
    path = path_of(config_of(session).exports_dir, task.id, spec["format"])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = export_files.attempt_file(path)
    try:
        with partial.open("w", newline="", encoding="utf-8") as f:
            if spec["format"] == "csv":
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(
                    {k: export_files.csv_safe(v) for k, v in row.items()} for row in rows
                )
            else:
                json.dump({"columns": columns, "rows": rows}, f)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {
        "format": spec["format"],
        "rows": len(rows),
        "columns": columns,
        "bytes": path.stat().st_size,
        "file": path.name,
    }


async def get(*, session: AsyncSession, export_id: uuid.UUID, tenant_id: str | None) -> Task:
    missing = NotFound(f"export {export_id} not found", field="export_id", code="export_not_found")
    try:
        task = await tasks.get_task(session=session, task_id=export_id, tenant_id=tenant_id)
    except NotFound:
        raise missing from None
    if task.task_type != "export":
        raise missing
    return task


def file_of(session: AsyncSession, task: Task) -> Path:
    if task.status != "COMPLETED":
        raise ExportNotReady(
            f"export {task.id} is {task.status.lower()}; the file is there once it completes",
            field="export_id",
        )
    path = path_of(config_of(session).exports_dir, task.id, task.input["format"])
    if not path.exists():
        raise ExportNotReady(f"export {task.id}'s file is gone (retention)", field="export_id")
    return path
