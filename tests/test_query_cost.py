"""DataLoaders keep list queries flat: 50 tasks with their transitions and logs cost a fixed
number of SQL statements (counted with a cursor listener, not trusted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text

from app.auth import Principal
from app.config import Settings
from app.gql.context import Context
from app.gql.schema import build_schema
from app.services import task_specs, task_submissions
from app.state import AppState, open_state
from tests.client import operations


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[AppState]:
    async with open_state(settings, listen=False) as opened:
        yield opened


async def test_list_with_relations_costs_three_statements(state: AppState) -> None:
    async with state.sessionmaker() as session, session.begin():
        for i in range(50):
            await task_submissions.submit_task(
                session=session,
                spec=task_specs.TaskSpec(task_type="echo", queue="parked", input={"i": i}),
            )
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    for engine in (state.engine, state.reads):  # every statement, whichever pool runs it
        event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        schema = build_schema(state.settings)
        context = Context(state=state, principal=Principal(subject="t", role="viewer"))
        result = await schema.execute(operations()["TasksWithRelations"], context_value=context)
    finally:
        for engine in (state.engine, state.reads):
            event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert result.errors is None
    edges = result.data["tasks"]["edges"]  # type: ignore[index]
    assert len(edges) == 50
    assert all(e["node"]["transitions"] == [{"toStatus": "QUEUED"}] for e in edges)
    # the page, then one batched load for transitions and one for logs
    assert len(statements) == 3, statements


async def test_a_list_reads_only_the_columns_its_selection_needs(state: AppState) -> None:
    # given tasks with large inputs
    async with state.sessionmaker() as session, session.begin():
        for i in range(5):
            await task_submissions.submit_task(
                session=session,
                spec=task_specs.TaskSpec(
                    task_type="echo", queue="parked", input={"blob": "x" * 10_000, "i": i}
                ),
            )
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    schema = build_schema(state.settings)

    async def run(query: str) -> dict[str, Any]:
        statements.clear()
        for engine in (state.engine, state.reads):
            event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            context = Context(state=state, principal=Principal(subject="t", role="viewer"))
            result = await schema.execute(query, context_value=context)
        finally:
            for engine in (state.engine, state.reads):
                event.remove(engine.sync_engine, "before_cursor_execute", capture)
        assert result.errors is None, result.errors
        assert len(statements) == 1, statements
        return result.data["tasks"]  # type: ignore[index,no-any-return]

    # when a list selects a few plain fields (through a fragment too)
    lean = await run(
        "{ tasks(first: 5) { edges { node { id status ...F } } } }"
        " fragment F on Task { queue durationMs }"
    )
    # then its statement reads those columns, never the inputs
    page = statements[0].split(" FROM ")[0]
    assert "tasks.input" not in page and "tasks.metadata" not in page, page
    assert "tasks.started_at" in page and "tasks.queue" in page
    assert {e["node"]["status"] for e in lean["edges"]} == {"QUEUED"}
    # and a field that needs the inputs loads them, answering the same
    whole = await run("{ tasks(first: 5) { edges { node { id queue input } } } }")
    assert "tasks.input" in statements[0].split(" FROM ")[0]
    assert [e["node"]["id"] for e in whole["edges"]] == [e["node"]["id"] for e in lean["edges"]]
    assert whole["edges"][0]["node"]["input"]["blob"] == "x" * 10_000


async def test_a_list_outside_transactions_survives_a_dropped_connection(
    state: AppState,
) -> None:
    # given tasks, and the reads pool holding the connection a first list used
    async with state.sessionmaker() as session, session.begin():
        for i in range(3):
            await task_submissions.submit_task(
                session=session,
                spec=task_specs.TaskSpec(task_type="echo", queue="parked", input={"i": i}),
            )
    async with state.reads.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    # when PostgreSQL drops that connection (a restart, an idle timeout)
    async with state.engine.begin() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    async with state.engine.connect() as admin:
        for _ in range(100):
            gone = (
                await admin.execute(
                    text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                )
            ).scalar_one()
            if gone:
                break
            await asyncio.sleep(0.05)
    # then the next page is still answered (read again on a fresh connection), not an error
    schema = build_schema(state.settings)
    context = Context(state=state, principal=Principal(subject="t", role="viewer"))
    result = await schema.execute(
        "{ tasks(first: 5) { totalCount edges { node { id } } } }", context_value=context
    )
    assert result.errors is None, result.errors
    assert result.data is not None and result.data["tasks"]["totalCount"] == 3
    assert len(result.data["tasks"]["edges"]) == 3
