"""Seed 004's metrics: series over a period at a granularity, and exports (a task of the one
lifecycle; its status and file are served beyond the seed)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principals import Principal
from app.db.models import Task
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Operator, Reader, State
from app.rest.files import DOWNLOADED, download
from app.rest.params import PathId
from app.rest.refusals import reading, writing
from app.services.monitoring import exports, metrics

router = APIRouter(prefix="/api/v1/monitoring/metrics", tags=["AI Monitoring: metrics"])
Family = Literal["requests", "latency", "tokens", "errors"]


def _series(report: metrics.Report, value: str) -> list[dict[str, Any]]:
    return [{"timestamp": b.timestamp, "value": getattr(b, value)} for b in report.buckets]


def shape(report: metrics.Report, chosen: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "requests" in chosen:
        out["requests"] = {
            "total": report.requests,
            "by_agent": report.by_agent,
            "timeseries": _series(report, "requests"),
        }
    if "latency" in chosen:
        out["latency"] = {
            **report.latency,
            "timeseries": [
                {"timestamp": b.timestamp, "value": b.avg_latency_ms, "p95": b.p95_latency_ms}
                for b in report.buckets
            ],
        }
    if "tokens" in chosen:
        out["tokens"] = {
            "input": report.input_tokens,
            "output": report.output_tokens,
            "timeseries": [
                {
                    "timestamp": b.timestamp,
                    "value": b.input_tokens + b.output_tokens,
                    "input": b.input_tokens,
                    "output": b.output_tokens,
                }
                for b in report.buckets
            ],
        }
    if "errors" in chosen:
        out["errors"] = {
            "total": report.errors,
            "by_type": report.errors_by_type,
            "timeseries": _series(report, "errors"),
        }
    return out


@router.get("", responses=documented((400, "invalid_metric")), summary="Get Metrics")
async def get_metrics(
    state: State,
    principal: Reader,
    agent_id: Annotated[str | None, Query(max_length=128)] = None,
    metric: Annotated[
        str | None, Query(max_length=64, description="requests, latency, tokens or errors")
    ] = None,
    period: Literal["1h", "24h", "7d", "30d"] = "24h",
    granularity: Literal["minute", "hour", "day"] | None = None,
) -> Any:
    """Buckets are in UTC; empty ones are zeros. Default granularity: minute for 1h, hour for
    24h and 7d, day for 30d; 7d and 30d by minute are refused (more than 1,500 points)."""
    async with reading(state, fail) as session:
        chosen = metrics.families(metric)
        report = await metrics.report(
            session,
            period=period,
            granularity=granularity,
            scope=metrics.Scope(agent_id=agent_id, tenant_id=principal.tenant_id),
        )
    return {
        "period": {"start": report.start, "end": report.end},
        "granularity": report.granularity,
        "metrics": shape(report, chosen),
    }


class Period(BaseModel):
    # a bare date means the whole day (date first: pydantic would read it as midnight)
    start: date | datetime
    end: date | datetime


class ExportIn(BaseModel):
    metrics: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=lambda: list(metrics.FAMILIES), max_length=4
    )
    period: Period
    format: Literal["csv", "json"] = "csv"
    granularity: Literal["minute", "hour", "day"] = "hour"
    agent_id: Annotated[str | None, Field(max_length=128)] = None


def _instant(value: datetime | date, *, end: bool) -> datetime:
    """A date means the whole day: a start at its midnight, an end at its last instant."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.max if end else time.min, tzinfo=UTC)


def export_out(task: Task) -> dict[str, Any]:
    base = f"/api/v1/monitoring/metrics/export/{task.id}"
    done = task.status == "COMPLETED"
    return {
        "export_id": str(task.id),
        "status": task.status.lower(),
        "format": task.input.get("format"),
        "created_at": task.created_at,
        "completed_at": task.completed_at,
        "rows": (task.result or {}).get("rows") if done else None,
        "error": task.errors[-1] if task.errors else None,
        "status_url": base,
        "download_url": f"{base}/download" if done else None,
    }


@router.post(
    "/export",
    status_code=202,
    responses=documented((400, "invalid_metric")),
    summary="Export Metrics",
)
async def export(body: ExportIn, state: State, principal: Operator) -> Any:
    """Starts the export as a background task and answers its id; the file is downloadable
    from `download_url` once `status` is completed."""
    request = exports.ExportRequest(
        metrics=body.metrics,
        start=_instant(body.period.start, end=False),
        end=_instant(body.period.end, end=True),
        format=body.format,
        granularity=body.granularity,
        agent_id=body.agent_id,
    )
    async with writing(state, fail) as session:
        task = await exports.start(
            session=session, request=request, tenant_id=principal.tenant_id, actor=principal.subject
        )
        return export_out(task)


NOT_FOUND = documented((404, "export_not_found"), (409, "export_not_ready"))


async def _export(session: AsyncSession, export_id: uuid.UUID, principal: Principal) -> Task:
    return await exports.get(session=session, export_id=export_id, tenant_id=principal.tenant_id)


@router.get("/export/{export_id}", responses=NOT_FOUND, summary="Export status (beyond the seed)")
async def export_status(export_id: PathId, state: State, principal: Reader) -> Any:
    async with reading(state, fail) as session:
        return export_out(await _export(session, export_id, principal))


@router.get(
    "/export/{export_id}/download",
    responses={**NOT_FOUND, **DOWNLOADED},
    response_class=FileResponse,
    summary="Download an export (beyond the seed)",
)
async def export_download(export_id: PathId, state: State, principal: Reader) -> Any:
    async with reading(state, fail) as session:
        path = exports.file_of(session, await _export(session, export_id, principal))
    return download(path)
