"""A task as a JSON-ready dict (what events carry) and back into a detached Task row."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.db.models import Task

_DATETIMES = (
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "next_attempt_at",
    "dead_lettered_at",
    "cancel_requested_at",
    "last_resume_attempt",
    "run_at",
    "due_at",
)
_COLUMNS = [c.key for c in Task.__mapper__.column_attrs]
_UUIDS = ("id", "workflow_id", "workflow_step_id", "parent_id")
_NEW_TASK = Task.__mapper__.class_manager.new_instance


def detached_task(values: dict[str, Any]) -> Task:
    """A Task holding `values` (by attribute name) as a loaded row holds them, built without
    the ORM's per-attribute change tracking (a twentieth of its cost). Only for rows written
    and read by statements: the ORM sees no changes on it, so it is never added to a session."""
    task: Task = _NEW_TASK()
    task.__dict__.update(values)
    return task


def task_snapshot(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {}
    loaded = task.__dict__  # a loaded attribute's value, without the descriptor's cost
    for key in _COLUMNS:
        value = loaded[key] if key in loaded else getattr(task, key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[key] = value
    return out


def task_from_snapshot(data: dict[str, Any]) -> Task:
    values = {k: data.get(k) for k in _COLUMNS}
    for key in _UUIDS:
        if isinstance(values.get(key), str):
            values[key] = uuid.UUID(values[key])
    for key in _DATETIMES:
        raw = values.get(key)
        if isinstance(raw, str):
            values[key] = datetime.fromisoformat(raw)
    return Task(**values)
