"""ORM models, one module per domain; importing this package registers them all."""

from app.db.models.auth import ApiKey
from app.db.models.tasks import Task, TaskLog, TaskTransition

__all__ = ["ApiKey", "Task", "TaskLog", "TaskTransition"]
