"""What seed 002's AI-audit routes share: how a domain error answers, and how a model run the
route waited for answers when it is not done yet."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from app.db.models import Task
from app.kernel.errors import DomainError, NotFound
from app.services.prompts import versions

KNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown model or version"}}
TEST_WAIT_SECONDS = 120.0


def refuse(exc: DomainError) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(404, exc.message)
    if isinstance(exc, versions.ImportNotAllowed):
        return HTTPException(403, exc.message)
    return HTTPException(
        422, [{"loc": ["body", exc.field or "body"], "msg": exc.message, "type": "value_error"}]
    )


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
