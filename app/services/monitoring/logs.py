"""Agent logs: bulk ingest (all or nothing) and search by agent, level floor, time window and
full text (PostgreSQL's `simple` configuration over the message and the context's values, so
identifiers and error codes match as written)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent, AgentLog
from app.kernel import effects
from app.kernel.errors import InvalidInput
from app.platform import clock

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
MAX_BATCH = 1000
MAX_LIMIT = 1000
MAX_MESSAGE = 10_000  # characters of one line
MAX_CONTEXT_KEYS = 100
MAX_ID = 128  # characters of an agent or trace id


class TooManyEntries(InvalidInput):
    code = "payload_too_large"


@dataclass(frozen=True)
class LogEntry:
    timestamp: datetime
    level: str
    message: str
    agent_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None


@dataclass(frozen=True)
class LogQuery:
    agent_id: str | None = None
    level: str | None = None  # a floor: warn means warn and error
    start_time: datetime | None = None
    end_time: datetime | None = None
    search: str | None = None
    limit: int = 100
    tenant_id: str | None = None


def _check(i: int, e: LogEntry) -> None:
    """One entry's bounds (both doors: REST's model says the same)."""
    problem = None
    if e.level not in LEVELS:
        problem = "level", f"must be one of {', '.join(LEVELS)}"
    elif not 1 <= len(e.message) <= MAX_MESSAGE:
        problem = "message", f"must be 1 to {MAX_MESSAGE} characters"
    elif len(e.agent_id or "") > MAX_ID or len(e.trace_id or "") > MAX_ID:
        problem = (
            "agent_id" if len(e.agent_id or "") > MAX_ID else "trace_id",
            (f"must be at most {MAX_ID} characters"),
        )
    elif not isinstance(e.context, dict) or len(e.context) > MAX_CONTEXT_KEYS:
        problem = "context", f"must be an object of at most {MAX_CONTEXT_KEYS} keys"
    if problem is not None:
        name, rule = problem
        raise InvalidInput(f"logs[{i}].{name} {rule}", field=f"logs.{i}.{name}")


async def ingest(*, session: AsyncSession, entries: list[LogEntry], tenant_id: str | None) -> int:
    """Store a batch in one statement. A tenant-scoped caller's lines are its tenant's and may
    name only its agents (422 naming the entry); an installation-wide caller's lines take the
    tenant of the agent they name."""
    if len(entries) > MAX_BATCH:
        raise TooManyEntries(f"at most {MAX_BATCH} log entries per request", field="logs")
    for i, e in enumerate(entries):
        _check(i, e)
    if not entries:
        return 0
    owners: dict[str, str | None] = {}
    names = {e.agent_id for e in entries if e.agent_id}
    if names:
        rows = await session.execute(select(Agent.id, Agent.tenant_id).where(Agent.id.in_(names)))
        owners = {a: t for a, t in rows.all()}
    if tenant_id is not None:
        # a tenant's lines may only name its own agents (an unknown id is not one of them)
        for i, e in enumerate(entries):
            if e.agent_id and (e.agent_id not in owners or owners[e.agent_id] != tenant_id):
                raise InvalidInput(
                    f"logs[{i}].agent_id: no agent {e.agent_id!r} in this tenant",
                    field=f"logs.{i}.agent_id",
                )
    now = clock.now()
    rows = await session.execute(
        insert(AgentLog).returning(AgentLog.id, AgentLog.agent_id, AgentLog.tenant_id),
        [
            {
                "at": e.timestamp,
                "level": e.level,
                "level_no": LEVELS[e.level],
                "agent_id": e.agent_id,
                "tenant_id": tenant_id if tenant_id is not None else owners.get(e.agent_id or ""),
                "message": e.message,
                "context": e.context,
                "trace_id": e.trace_id,
                "received_at": now,
            }
            for e in entries
        ],
    )
    stored = rows.all()
    # for a live tail (GraphQL's logTail): the new lines' ids and what a subscriber filters on,
    # never the lines themselves (at most MAX_BATCH ids: a few KB); subscribers read the rows
    effects.record(
        session,
        effects.Published(
            TAIL_KIND,
            str(stored[0].id),
            {
                "ids": [r.id for r in stored],
                "agents": sorted({r.agent_id for r in stored if r.agent_id}),
                "tenants": sorted({r.tenant_id for r in stored if r.tenant_id}),
                "unscoped": any(r.tenant_id is None for r in stored),
                "max_level": max(LEVELS[e.level] for e in entries),
            },
        ),
    )
    return len(entries)


TAIL_KIND = "logs"


async def lines(
    *,
    session: AsyncSession,
    ids: Sequence[int],
    agent_id: str | None = None,
    level: str | None = None,
    tenant_id: str | None = None,
) -> Sequence[Row[Any]]:
    """The lines of `ids` that match the filters, in the order they were stored."""
    stmt = select(*COLUMNS).where(AgentLog.id.in_(ids[:MAX_BATCH]))
    if agent_id is not None:
        stmt = stmt.where(AgentLog.agent_id == agent_id)
    if level is not None:
        stmt = stmt.where(AgentLog.level_no >= LEVELS[level])
    if tenant_id is not None:
        stmt = stmt.where(AgentLog.tenant_id == tenant_id)
    return (await session.execute(stmt.order_by(AgentLog.id))).all()


def tsquery(text: str) -> Any:
    return func.websearch_to_tsquery("simple", text)


COLUMNS = (
    AgentLog.id,
    AgentLog.at,
    AgentLog.level,
    AgentLog.agent_id,
    AgentLog.message,
    AgentLog.context,
    AgentLog.trace_id,
)


async def search(*, session: AsyncSession, query: LogQuery) -> Sequence[Row[Any]]:
    """Newest first; plain rows (id, at, level, agent_id, message, context, trace_id), no ORM
    objects: a page of log lines is read, never changed."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    stmt = select(*COLUMNS)
    if query.agent_id is not None:
        stmt = stmt.where(AgentLog.agent_id == query.agent_id)
    if query.level is not None:
        if query.level not in LEVELS:
            raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", field="level")
        stmt = stmt.where(AgentLog.level_no >= LEVELS[query.level])
    if query.start_time is not None:
        stmt = stmt.where(AgentLog.at >= query.start_time)
    if query.end_time is not None:
        stmt = stmt.where(AgentLog.at <= query.end_time)
    if query.tenant_id is not None:
        stmt = stmt.where(AgentLog.tenant_id == query.tenant_id)
    if query.search is not None and query.search.strip():
        stmt = stmt.where(AgentLog.search.op("@@")(tsquery(query.search)))
    stmt = stmt.order_by(AgentLog.at.desc(), AgentLog.id.desc()).limit(query.limit)
    return (await session.execute(stmt)).all()
