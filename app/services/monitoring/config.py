"""Monitoring's deployment settings as the services need them (built from app.config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.agents.status import StatusRules
from app.services.tasks.specs import TaskDefaults


@dataclass(frozen=True)
class MonitoringConfig:
    status: StatusRules = field(default_factory=StatusRules)
    window_seconds: float = 300.0
    eval_interval_seconds: float = 15.0
    remediation_interval_seconds: float = 300.0
    channel_urls: dict[str, str] = field(default_factory=dict)
    queue: str = "default"
    allow_private_webhooks: bool = False
    log_retention_days: float = 14.0
    metric_retention_days: float = 30.0
    exports_dir: Path = Path(".opsgraph/exports")
    task_defaults: TaskDefaults = field(default_factory=TaskDefaults)


def config_of(session: AsyncSession) -> MonitoringConfig:
    """The process's settings, carried on every session (see make_sessionmaker)."""
    config = session.info.get("monitoring")
    return config if isinstance(config, MonitoringConfig) else MonitoringConfig()
