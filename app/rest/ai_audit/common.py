"""What seed 002's AI-audit routes share: how a domain error answers, and how the model runs a
route waits for answer (when they finish in time, or when they do not)."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from app.db.models import Task
from app.edge.state import AppState
from app.edge.waiting import Submit, submit_and_wait
from app.kernel.errors import DomainError
from app.rest.refusals import Refusals
from app.services.jobs import actions
from app.services.prompts import versions

KNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown model or version"}}
TEST_WAIT_SECONDS = 120.0

refuse = Refusals({versions.ImportNotAllowed: 403, actions.NotAllowed: 403})


async def waited(state: AppState, submit: Submit) -> list[Task] | JSONResponse:
    """The model runs `submit` starts, once they all finished (a domain error refused), or the
    answer that they are still running."""
    try:
        runs = await submit_and_wait(state, submit, TEST_WAIT_SECONDS)
    except DomainError as exc:
        raise refuse(exc) from None
    return unfinished(runs) or runs


def unfinished(runs: list[Task]) -> JSONResponse | None:
    if all(t.status == "COMPLETED" for t in runs):
        return None
    failed = [t for t in runs if t.status in ("FAILED", "CANCELLED")]
    if failed:
        errors = failed[0].errors
        raise HTTPException(502, f"the test run failed: {errors[-1] if errors else 'cancelled'}")
    return JSONResponse(
        {
            "status": "processing",
            "task_ids": [str(t.id) for t in runs],
            "message": "still running; see the tasks",
        },
        status_code=202,
    )
