"""The body of POST /api/jobs, one schema per job type (a `oneOf` on `job_type`), so the OpenAPI
document says what each type takes; the job registry (services/jobs/types.py) checks the same
rules for GraphQL's `startJob`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from app.rest.params import ROW_ID_MAX, IsoDateTime
from app.services.jobs import types
from app.services.monitoring import metrics as series

Format = Literal["csv", "json"]
Text = Annotated[str, Field(min_length=1, max_length=255)]


class _Params(BaseModel):
    # a mistyped parameter is refused by name, never silently ignored
    model_config = ConfigDict(extra="forbid")


class RowExport(_Params):
    """Security events, tasks or agent logs, filtered per target."""

    target: Literal["security_events", "tasks", "logs"] = "security_events"
    format: Format = "csv"
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None
    pause_ms: Annotated[StrictInt, Field(ge=0, le=1000)] = Field(
        0, description="Pause between batches of 500 rows (spares the database)."
    )
    camera_id: Text | None = Field(None, description="security_events")
    min_risk_score: Annotated[StrictInt, Field(ge=0, le=types.MAX_RISK_SCORE)] | None = Field(
        None, description="security_events"
    )
    queue: Text | None = Field(None, description="tasks")
    status: (
        Literal[
            "QUEUED",
            "RUNNING",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "queued",
            "running",
            "completed",
            "failed",
            "cancelled",
        ]
        | None
    ) = Field(None, description="tasks")
    agent_id: Text | None = Field(None, description="logs")
    level: Literal["debug", "info", "warn", "error"] | None = Field(
        None, description="logs: a floor"
    )


class MetricExport(_Params):
    """Metric series over a period (seed 004's export, as a job)."""

    target: Literal["metrics"]
    format: Format = "csv"
    since: IsoDateTime
    until: IsoDateTime
    metrics: list[Literal[series.FAMILIES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(series.FAMILIES), max_length=len(series.FAMILIES)
    )
    granularity: Literal["minute", "hour", "day"] = "hour"
    agent_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class ExportJob(BaseModel):
    job_type: Literal["export"]
    params: RowExport | MetricExport = Field(default_factory=RowExport)


class Evaluate(_Params):
    event_ids: list[Annotated[StrictInt, Field(ge=1, le=ROW_ID_MAX)]] = Field(
        max_length=types.MAX_EVENT_IDS
    )
    force: StrictBool = False


class AiProcessingJob(BaseModel):
    job_type: Literal["ai_processing"]
    params: Evaluate


class Retention(_Params):
    older_than_days: Annotated[float, Field(gt=0, le=3650)] | None = Field(
        None,
        description="Else each kind's retention setting; below one hour (0.0417) only with"
        " `force: true`.",
    )
    force: StrictBool = False


class CleanupJob(BaseModel):
    job_type: Literal["cleanup"]
    params: Retention = Field(default_factory=Retention)


StartIn = Annotated[ExportJob | AiProcessingJob | CleanupJob, Field(discriminator="job_type")]


def params_of(body: ExportJob | AiProcessingJob | CleanupJob) -> dict[str, Any]:
    """The parameters as the registry reads them: given ones only (its defaults apply to the
    rest), date-times as ISO 8601 text."""
    return body.params.model_dump(mode="json", exclude_unset=True)
