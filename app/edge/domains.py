"""The domains this opsgraph is assembled from, and what they plug into: the before-commit
reactions they register with the task core (app/services/tasks/reactions.py), in the order
they run, and the listeners they give other domains. A process installs them where it is
assembled (the API's open_state, the worker's build_state); a new domain adds its line here
and its registrations in its own package, never an edit to the core."""

from __future__ import annotations

from app.services.audit import evaluations, records
from app.services.monitoring import notify
from app.services.pipeline import stages
from app.services.workflows import engine


def install() -> None:
    """Register every domain (again is harmless: a registration replaces itself in place)."""
    engine.register()  # workflow steps: the successors of a completed step
    stages.register()  # the camera pipeline: each stage's end chains the next
    evaluations.register()  # the audit: a judge's verdict becomes the event's evaluation
    records.register()  # after the pipeline: the AI decisions its reactions recorded
    notify.register()  # monitoring hears agents' status changes and restarts
