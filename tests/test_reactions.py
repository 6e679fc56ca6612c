"""Domains register with the task core: the reactions the unit of work runs before commit, in
the order the assembly gives (app/edge/domains.py), and the tasks they watch, which the
worker's hot path must not write around."""

from __future__ import annotations

import uuid

from app.db.models import Task
from app.edge import domains
from app.services.tasks import reactions
from app.services.tasks.attempt_writes import is_plain


def test_the_domains_register_their_reactions_in_order() -> None:
    domains.install()
    domains.install()  # a second assembly in one process changes nothing
    names = [r.name for r in reactions.registered()]
    # the audit keeps the decisions the pipeline's reactions record: it runs after them
    assert names == ["workflows", "pipeline", "audit.evaluations", "audit.records"]


def test_a_task_some_reaction_watches_is_not_plain() -> None:
    # given the installed domains
    domains.install()
    # then a plain task is written by the raw statement, a watched one is not
    assert is_plain(Task(task_type="echo"))
    assert not is_plain(Task(task_type="echo", workflow_id=uuid.uuid4()))  # a workflow step
    for stage in ("detection", "enrichment", "analysis"):  # the pipeline's stages
        assert not is_plain(Task(task_type=stage))
    assert not is_plain(Task(task_type="evaluation"))  # the audit's judge
    assert not is_plain(Task(task_type="echo", webhook_url="https://example.com/hook"))
