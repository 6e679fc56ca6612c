"""Jobs' deployment settings as the services need them (built from app.config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.tasks.specs import TaskDefaults


@dataclass(frozen=True)
class JobsConfig:
    queue: str = "default"
    exports_dir: Path = Path(".opsgraph/exports")
    task_defaults: TaskDefaults = field(default_factory=TaskDefaults)
    # cleanup's default retention (a job's params.older_than_days overrides)
    task_retention_days: float = 30.0
    log_retention_days: float = 14.0
    metric_retention_days: float = 30.0
    export_retention_days: float = 7.0


def config_of(session: AsyncSession) -> JobsConfig:
    """The process's settings, carried on every session (see make_sessionmaker)."""
    config = session.info.get("jobs")
    return config if isinstance(config, JobsConfig) else JobsConfig()
