"""Waiting for tasks to finish inside a request (seed 003's synchronous create, prompt tests):
subscribe before submitting so no completion slips past, then read the rows, which are the
truth if an event was missed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.edge.uow import read_only, unit_of_work
from app.platform.events import Event
from app.services.tasks import queries as task_queries
from app.services.tasks.lifecycle import FINISHED

Submit = Callable[[AsyncSession], Awaitable[Sequence[Task]]]


async def submit_and_wait(state: Any, submit: Submit, timeout: float) -> list[Task]:
    """Submit tasks in one unit of work, wait up to `timeout` for all of them to finish, and
    answer their rows (finished or not)."""
    ids: set[str] = set()

    def finished(e: Event) -> bool:
        return e.kind == "task" and e.key in ids and e.data["status"] in FINISHED

    async with state.broker.subscribe(finished, buffer=16) as sub:
        async with unit_of_work(state.sessionmaker, state.redis) as session:
            submitted = list(await submit(session))
            ids.update(str(t.id) for t in submitted)
        pending = set(ids)
        try:
            async with asyncio.timeout(timeout):
                while pending:
                    event = await sub.get()
                    pending.discard(event.key)
        except TimeoutError:
            pass
    async with read_only(state.sessionmaker) as session:
        rows = await task_queries.get_tasks(session=session, task_ids=[t.id for t in submitted])
    return [rows[t.id] for t in submitted]
