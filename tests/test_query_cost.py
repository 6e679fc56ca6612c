"""What a query costs. DataLoaders keep list queries flat: 50 tasks with their transitions and
logs cost a fixed number of SQL statements (counted with a cursor listener, not trusted). And the
query cost counts what a field does (issue 29): a `limit` is a page size like `first`, a
thumbnail (a file read and an image decode) weighs 100 and is capped per operation, and the
console's own pipeline page stays under every limit, each of its frames decoded once."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import graphql
import pytest
from PIL import Image
from sqlalchemy import event, text

from app.auth.principals import Principal
from app.config import Settings
from app.edge.state import AppState, open_state
from app.gql import cost
from app.gql.context import Context
from app.gql.schema import build_schema
from app.services.pipeline import thumbnails
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from tests.client import operations
from tests.factories import insert_detection
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]


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

        async def gone() -> bool:
            found = await admin.execute(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            return bool(found.scalar_one())

        await wait_for(gone, every=0.05, what=f"PostgreSQL to drop connection {pid}")
    # then the next page is still answered (read again on a fresh connection), not an error
    schema = build_schema(state.settings)
    context = Context(state=state, principal=Principal(subject="t", role="viewer"))
    result = await schema.execute(
        "{ tasks(first: 5) { totalCount edges { node { id } } } }", context_value=context
    )
    assert result.errors is None, result.errors
    assert result.data is not None and result.data["tasks"]["totalCount"] == 3
    assert len(result.data["tasks"]["edges"]) == 3


# --- the cost counts what a field does (issue 29) --------------------------------------------


async def _run(state: AppState, query: str) -> graphql.ExecutionResult:
    """`query` as the console's least credential (a viewer) sends it, in this process."""
    schema = build_schema(state.settings)
    context = Context(state=state, principal=Principal(subject="t", role="viewer"))
    return await schema.execute(query, context_value=context)


def _refusal(result: Any) -> dict[str, Any]:
    assert result.data is None, result.data  # refused at validation: nothing ran
    errors = [e.extensions for e in result.errors or ()]
    assert errors and all(e and e["code"] == "QUERY_TOO_COSTLY" for e in errors), result.errors
    return {e.get("field", "cost"): e for e in errors if e}


async def test_a_limit_is_priced_as_a_page(state: AppState) -> None:
    # 30 aliases of logs(limit: 1000) were priced 120, and jobs(first: 100) with 29 aliases of
    # logs(limit: 1000) 6,001: a million and 2.9 million rows asked for at once
    logs = " ".join(f"l{i}: logs(limit: 1000) {{ timestamp level message }}" for i in range(30))
    refused = _refusal(await _run(state, "{ " + logs + " }"))
    assert refused["cost"]["cost"]["requestedQueryCost"] == 30 * (1 + 1000 * 3)
    job_logs = " ".join(f"l{i}: logs(limit: 1000) {{ message }}" for i in range(29))
    refused = _refusal(
        await _run(state, "{ jobs(first: 100) { edges { node { " + job_logs + " } } } }")
    )
    assert refused["cost"]["cost"]["requestedQueryCost"] == 1 + 100 * (2 + 29 * (1 + 1000))

    # one such list is answered, priced as the rows it may hold: written, left out (the
    # argument's default, 100), or a variable (anything the field accepts, 1000, whatever the
    # variable's default: the client may send another value)
    for query, priced in [
        ("{ logs(limit: 1000) { timestamp level message } }", 1 + 1000 * 3),
        ("{ logs { timestamp level message } }", 1 + 100 * 3),
        ("query L($n: Int! = 5) { logs(limit: $n) { timestamp level message } }", 1 + 1000 * 3),
        ("{ jobs(first: 10) { edges { node { logs { message } } } } }", 1 + 10 * (2 + 1 + 100)),
    ]:
        result = await _run(state, query)
        assert result.errors is None, (query, result.errors)
        assert result.extensions is not None
        assert result.extensions["cost"]["requestedQueryCost"] == priced, query


def test_every_sized_list_of_the_schema_is_priced() -> None:
    # A list-size argument the rule did not know would be priced 1 whatever it asks for: every
    # Int argument of a list is a size the rule reads or only moves through the list, and every
    # sized list that is not a connection states the most it answers.
    schema = build_schema(Settings())._schema
    sized: set[str] = set()
    for type_ in schema.type_map.values():
        if type_.name.startswith("__") or not isinstance(
            type_, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType
        ):
            continue
        for name, field in type_.fields.items():
            returns = graphql.get_named_type(field.type)
            connection = (
                isinstance(returns, graphql.GraphQLObjectType) and "edges" in returns.fields
            )
            listed = isinstance(graphql.get_nullable_type(field.type), graphql.GraphQLList)
            ints = {
                a
                for a, arg in field.args.items()
                if graphql.get_named_type(arg.type) is graphql.GraphQLInt
            }
            if connection or listed:
                moving = ints - set(cost.SIZE_ARGUMENTS)
                # start/offset move through a list, days is a time window
                assert moving <= {"start", "offset", "days"}, (type_.name, name, moving)
            if ints & set(cost.SIZE_ARGUMENTS) and not connection:
                sized.add(f"{type_.name}.{name}")
    assert sized == set(cost.LIST_BOUNDS)


async def _frames(state: AppState, engine: Any, events: int, per_event: int) -> list[int]:
    """`events` security events of camera yard, each of a batch of `per_event` detections whose
    frames are real pictures in the camera folder; the detections' ids."""
    folder = state.settings.cameras_folder / "yard"
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for e in range(events):
        batch = f"b-{uuid.uuid4().hex[:8]}"
        for d in range(per_event):
            frame = folder / f"cost-{batch}-{d}.jpg"
            Image.new("RGB", (320, 240), (e * 10 % 256, d * 40, 90)).save(frame, format="JPEG")
            ids.append(await insert_detection(engine, str(frame), batch_id=batch))
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO security_events (batch_id, camera_id, analysis_task_id,"
                    " risk_score, risk_level, summary, reasoning, detection_count, input_tokens,"
                    " output_tokens, started_at, ended_at, created_at) VALUES (:b, 'yard',"
                    " gen_random_uuid(), 10, 'low', 's', 'r', :n, 0, 0, now(), now(), now())"
                ),
                {"b": batch, "n": per_event},
            )
    return ids


async def test_thumbnails_weigh_and_are_capped_per_operation(state: AppState, engine: Any) -> None:
    (one,) = await _frames(state, engine, 1, 1)
    made = thumbnails.FIGURES.made
    # a viewer's 100 events x 8 frames x 29 aliased thumbnails was priced 23,501 (under the
    # limit) and asked for 23,200 decodes: refused, naming the field, before any decode
    aliased = " ".join(f"t{i}: thumbnail" for i in range(29))
    refused = _refusal(
        await _run(
            state,
            "{ securityEvents(first: 100) { edges { node { detections(first: 8) { "
            + aliased
            + " } } } } }",
        )
    )
    # refused twice: over the thumbnail cap, and over the cost limit at 100 a thumbnail
    assert set(refused) == {"Detection.thumbnail", "cost"}, refused
    capped = refused["Detection.thumbnail"]
    assert (capped["requested"], capped["maximumAvailable"]) == (100 * 8 * 29, 100)
    assert refused["cost"]["cost"]["requestedQueryCost"] == 1 + 100 * (3 + 8 * 29 * 100)
    assert thumbnails.FIGURES.made == made
    # the cap counts pages times aliases: 26 events x 4 frames is over the default (100), and
    # an event's every detection (no `first`) counts as a full batch (50)
    for query in (
        "{ securityEvents(first: 26) { edges { node { detections(first: 4) { thumbnail } } } } }",
        "{ securityEvents(first: 3) { edges { node { detections { thumbnail } } } } }",
    ):
        refused = _refusal(await _run(state, query))
        assert "Detection.thumbnail" in refused, query
        message = next(e.message for e in (await _run(state, query)).errors or ())
        assert (
            "Detection.thumbnail" in message and "OPSGRAPH_MAX_THUMBNAILS_PER_OPERATION" in message
        )
    # at the cap it is answered, each thumbnail weighing 100 in the cost
    result = await _run(
        state,
        "{ securityEvents(first: 25) { edges { node { detections(first: 4) { thumbnail } } } } }",
    )
    assert result.errors is None, result.errors
    assert result.extensions and result.extensions["cost"]["requestedQueryCost"] == 1 + 25 * (
        3 + 4 * 100
    )
    result = await _run(state, f"{{ detection(id: {one}) {{ thumbnail(size: 48) }} }}")
    assert result.errors is None, result.errors
    assert result.data and result.data["detection"]["thumbnail"].startswith("data:image/jpeg")
    assert result.extensions and result.extensions["cost"]["requestedQueryCost"] == 1 + 100


def _console_documents() -> dict[str, str]:
    """Every document exactly as console.js sends it (its row fragments spliced in), by name."""
    source = (ROOT / "app" / "console" / "static" / "console.js").read_text()
    fragments = dict(re.findall(r'var (\w+) = "([^"]*)";', source))
    found = {}
    for name, body in re.findall(r'(\w+): /\* graphql \*/ ((?:"[^"]*"|\w+|\s*\+\s*)+),', source):
        parts = re.findall(r'"([^"]*)"|(\b[A-Z_]+\b)', body)
        found[name] = "".join(text or fragments[var] for text, var in parts)
    return found


async def test_the_consoles_pipeline_page_is_accepted_and_decodes_each_frame_once(
    state: AppState, engine: Any
) -> None:
    # given a full page of events (20, the console's page) of batches of 5 frames
    await _frames(state, engine, 20, 5)
    page = _console_documents()["Pipeline"]
    made, cached = thumbnails.FIGURES.made, thumbnails.FIGURES.cached
    # when the console's own document asks for its page
    result = await _run(state, page)
    # then it is under every limit, and each of the 80 frames it shows is decoded once
    assert result.errors is None, result.errors
    edges = result.data["securityEvents"]["edges"]  # type: ignore[index]
    shown = [d["thumbnail"] for e in edges for d in e["node"]["detections"]]
    assert len(edges) == 20 and len(shown) == 80
    assert all(t and t.startswith("data:image/jpeg;base64,") for t in shown)
    assert result.extensions is not None
    figure = result.extensions["cost"]["requestedQueryCost"]
    # cameras (1 + 4), activeBatches (1 + 7), 20 events of 6 fields and 4 frames of 2 fields and a
    # thumbnail: 8,354 of 25,000
    assert figure == (1 + 4) + (1 + 7) + 1 + 20 * (1 + 1 + 6 + 1 + 4 * (2 + 100))
    assert figure <= state.settings.max_query_cost
    assert thumbnails.FIGURES.made == made + 80
    # on no more threads than the setting allows
    decoding = [t for t in threading.enumerate() if t.name.startswith("thumbnail")]
    assert 0 < len(decoding) <= state.settings.thumbnail_threads
    # and when the console reloads (an event arrived), none is decoded again
    again = await _run(state, page)
    assert again.errors is None and again.data == result.data
    assert thumbnails.FIGURES.made == made + 80
    assert thumbnails.FIGURES.cached == cached + 80
    # nor is one asked for under several aliases at once; another size is another thumbnail
    detection = edges[0]["node"]["detections"][0]["id"]
    aliased = " ".join(f"t{i}: thumbnail(size: 200)" for i in range(5))
    result = await _run(state, f"{{ detection(id: {detection}) {{ {aliased} }} }}")
    assert result.errors is None, result.errors
    assert len(set(result.data["detection"].values())) == 1  # type: ignore[index]
    assert thumbnails.FIGURES.made == made + 81


def test_every_console_document_is_under_every_cost_limit() -> None:
    settings = Settings()
    schema = build_schema(settings)._schema
    limits = cost.limits_of(settings, settings.max_query_cost, settings.page_size_max, schema)
    documents = _console_documents()
    assert len(documents) >= 40
    for name, document in documents.items():
        found = cost.estimate(schema, graphql.parse(document), limits)
        assert found.cost <= settings.max_query_cost, (name, found.cost)
        for coordinate, asked in found.counts.items():
            setting = cost.declared(schema).caps[coordinate]
            assert asked <= limits.setting(setting), (name, coordinate, asked)
