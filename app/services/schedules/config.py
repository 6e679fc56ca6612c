"""What a deployment decides about schedules (Settings.schedules), apart from the commands so
the settings module imports no engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.services.tasks import specs as task_specs


@dataclass(frozen=True)
class ScheduleRules:
    """The shortest interval a schedule may have, how late a tick may still fire, and the task
    defaults its runs are submitted with."""

    min_seconds: float = 60.0
    misfire_seconds: float = 10.0
    task_defaults: task_specs.TaskDefaults = field(default_factory=task_specs.TaskDefaults)
