"""Seed 004's logs: bulk ingest (up to 1,000 entries; more is 413; one bad entry refuses the
whole request, naming its index) and search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from app.edge.uow import read_only
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Operator, Reader, State
from app.rest.errors import TOO_LARGE
from app.rest.params import IsoDateTime
from app.rest.refusals import writing
from app.rest.shapes import columns
from app.services.monitoring import logs

router = APIRouter(prefix="/api/v1/monitoring/logs", tags=["AI Monitoring: logs"])
Level = Literal["debug", "info", "warn", "error"]


class LogIn(BaseModel):
    timestamp: IsoDateTime
    level: Level
    message: Annotated[str, Field(min_length=1, max_length=logs.MAX_MESSAGE)]
    agent_id: Annotated[str | None, Field(max_length=logs.MAX_ID)] = None
    context: dict[str, Any] = Field(default_factory=dict, max_length=logs.MAX_CONTEXT_KEYS)
    trace_id: Annotated[str | None, Field(max_length=logs.MAX_ID)] = None


class LogsIn(BaseModel):
    logs: list[LogIn] = Field(max_length=logs.MAX_BATCH)

    @model_validator(mode="before")
    @classmethod
    def _at_most_a_batch(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("logs"), list):
            n = len(data["logs"])
            if n > logs.MAX_BATCH:
                raise PydanticCustomError(
                    TOO_LARGE,
                    f"{n} log entries: at most {logs.MAX_BATCH} per request",  # type: ignore[arg-type]
                )
        return data


@router.post(
    "",
    status_code=202,
    responses=documented((413, TOO_LARGE)),
    summary="Ingest Client Logs",
)
async def ingest(body: LogsIn, state: State, principal: Operator) -> Any:
    """All entries are stored, or none (422 names the first bad entry's index)."""
    entries = [logs.LogEntry(**e.model_dump()) for e in body.logs]
    async with writing(state, fail) as session:
        n = await logs.ingest(session=session, entries=entries, tenant_id=principal.tenant_id)
    return {"accepted": n}


@router.get("", summary="Query Logs")
async def search(
    state: State,
    principal: Reader,
    agent_id: Annotated[str | None, Query(max_length=128)] = None,
    level: Annotated[Level | None, Query(description="A floor: warn means warn and error")] = None,
    start_time: IsoDateTime | None = None,
    end_time: IsoDateTime | None = None,
    search: Annotated[
        str | None,
        Query(max_length=500, description="Full text over the message and context values"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=logs.MAX_LIMIT)] = 100,
) -> Any:
    """Newest first."""
    query = logs.LogQuery(
        agent_id=agent_id,
        level=level,
        start_time=start_time,
        end_time=end_time,
        search=search,
        limit=limit,
        tenant_id=principal.tenant_id,
    )
    async with read_only(state.sessionmaker) as session:
        found = await logs.search(session=session, query=query)
    return {
        "logs": [
            {
                "id": row.id,
                "timestamp": row.at,
                **columns(row, "level", "agent_id", "message", "context", "trace_id"),
            }
            for row in found
        ],
        "count": len(found),
    }
