"""The registry of job types: what each does, whether a running one may be aborted, and the
parameters it takes (validated before anything is stored). Both doors (REST `POST /api/jobs` and
GraphQL `startJob`) start a job through `validate`: a parameter PostgreSQL would refuse when the
job runs (a date-time outside what a timestamp column holds, a number outside its column's
range) is refused here, naming it, rather than failing the job with a database error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.db.models import SecurityEvent
from app.kernel.errors import InvalidInput
from app.platform.storable import TIMESTAMP_RANGE, timestamp_problem, value_problem


@dataclass(frozen=True)
class JobType:
    type: str
    description: str
    supports_abort: bool
    operations: tuple[str, ...]
    # longest one attempt may run (OPSGRAPH_JOB_TIME_LIMITS overrides it per type): a job
    # may take much longer than one LLM call, so it does not share the tasks' 600 s
    time_limit_seconds: float = 3600.0


# the cleanup job's least retention unless an admin says `force` (one hour, in days)
CLEANUP_MIN_DAYS = 1 / 24
MAX_EVENT_IDS = 10_000  # events one ai_processing job judges (as the batch route)
EXPORT_TARGETS = ("security_events", "tasks", "logs", "metrics")
FORMATS = ("csv", "json")
LOG_LEVELS = ("debug", "info", "warn", "error")  # a logs export's floor
TASK_STATUSES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")  # either case
MAX_RISK_SCORE = 100  # an analysis's score: 0 to 100

JOB_TYPES: dict[str, JobType] = {
    "export": JobType(
        "export",
        "Export security events, tasks, agent logs or metrics to CSV or JSON (streamed to a"
        " file under <data_dir>/exports, downloadable when done)",
        supports_abort=True,
        operations=EXPORT_TARGETS,
    ),
    "ai_processing": JobType(
        "ai_processing",
        "Evaluate security events with the LLM judge (batch audit): quality scores, model"
        " contributions and prompt suggestions per event",
        supports_abort=True,
        operations=("evaluate",),
    ),
    "cleanup": JobType(
        "cleanup",
        "Delete finished tasks, agent logs, metric samples and export files older than their"
        " retention",
        supports_abort=False,
        operations=("retention",),
    ),
}

# seed 002's words for the lifecycle's statuses
STATUS_WORDS = {
    "QUEUED": "pending",
    "RUNNING": "running",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
STATUSES = {word: status for status, word in STATUS_WORDS.items()}


def job_type(name: str) -> JobType:
    found = JOB_TYPES.get(name)
    if found is None:
        raise InvalidInput(
            f"unknown job type {name!r}; known: {', '.join(JOB_TYPES)}", field="job_type"
        )
    return found


def statuses(words: list[str]) -> list[str]:
    """Seed words (pending, running, ...) to lifecycle statuses; unknown words are refused."""
    out = []
    for w in words:
        if w not in STATUSES:
            raise InvalidInput(
                f"unknown status {w!r}; known: {', '.join(STATUSES)}", field="status"
            )
        out.append(STATUSES[w])
    return out


def _time(params: dict[str, Any], key: str) -> None:
    value = params.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInput(f"params.{key} must be an ISO 8601 date-time", field=f"params.{key}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"params.{key} must be an ISO 8601 date-time", field=f"params.{key}"
        ) from None
    # compared with a timestamp column when the job runs (a naive value is UTC there)
    if timestamp_problem(when if when.tzinfo else when.replace(tzinfo=UTC)):
        raise InvalidInput(f"params.{key} {TIMESTAMP_RANGE}", field=f"params.{key}")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(kind: JobType, params: dict[str, Any]) -> str:
    """Check a job's parameters; answer its operation."""
    if kind.type == "export":
        target = params.get("target", "security_events")
        if target not in EXPORT_TARGETS:
            raise InvalidInput(
                f"params.target must be one of {', '.join(EXPORT_TARGETS)}", field="params.target"
            )
        if params.get("format", "csv") not in FORMATS:
            raise InvalidInput("params.format must be csv or json", field="params.format")
        for key in ("since", "until"):
            _time(params, key)
        pause = params.get("pause_ms", 0)
        if not isinstance(pause, int) or isinstance(pause, bool) or not 0 <= pause <= 1000:
            raise InvalidInput("params.pause_ms must be 0 to 1000", field="params.pause_ms")
        for key in ("camera_id", "queue", "status", "agent_id"):
            if key in params and not isinstance(params[key], str):
                raise InvalidInput(f"params.{key} must be a string", field=f"params.{key}")
        score = params.get("min_risk_score")
        if score is not None and (not _integer(score) or not 0 <= score <= MAX_RISK_SCORE):
            raise InvalidInput(
                f"params.min_risk_score must be an integer from 0 to {MAX_RISK_SCORE}",
                field="params.min_risk_score",
            )
        if params.get("level") is not None and params["level"] not in LOG_LEVELS:
            raise InvalidInput(
                f"params.level must be one of {', '.join(LOG_LEVELS)}", field="params.level"
            )
        if params.get("status") is not None and params["status"].upper() not in TASK_STATUSES:
            raise InvalidInput(
                f"params.status must be one of {', '.join(TASK_STATUSES)}", field="params.status"
            )
        return str(target)
    if kind.type == "ai_processing":
        ids = params.get("event_ids")
        id_type = SecurityEvent.__table__.c.id.type  # compared with the events' ids
        if not isinstance(ids, list) or not all(
            _integer(i) and i > 0 and value_problem(id_type, i) is None for i in ids
        ):
            raise InvalidInput(
                "params.event_ids must be a list of event ids", field="params.event_ids"
            )
        if len(ids) > MAX_EVENT_IDS:
            raise InvalidInput(
                f"params.event_ids: at most {MAX_EVENT_IDS} events per job",
                field="params.event_ids",
            )
        return "evaluate"
    days = params.get("older_than_days")
    if days is not None and (
        not isinstance(days, int | float) or isinstance(days, bool) or not 0 < days <= 3650
    ):
        raise InvalidInput(
            "params.older_than_days must be between 0 and 3650", field="params.older_than_days"
        )
    force = params.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInput("params.force must be true or false", field="params.force")
    if days is not None and days < CLEANUP_MIN_DAYS and not force:
        # a slip of the finger (0.0001) would delete every finished record of the installation
        raise InvalidInput(
            f"params.older_than_days below {CLEANUP_MIN_DAYS:.6g} (one hour) needs"
            " params.force: true",
            field="params.older_than_days",
        )
    return "retention"
