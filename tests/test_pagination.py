"""Keyset cursors as a frontend uses them: walks that stay exact while tasks arrive and change
status, backward paging, cursors refused outside their list, a nullable sort column, and the
REST pages deeper than
100 rows (every page a response counts is served)."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_sessionmaker
from app.db.models import Task
from app.services.tasks import specs as task_specs
from app.services.tasks import submissions as task_submissions
from tests.client import GraphQLClient
from tests.factories import insert_events

DESC_CREATED = {"field": "CREATED_AT", "direction": "DESC"}


async def seed(engine: AsyncEngine, count: int, *, completed: int = 0) -> list[uuid.UUID]:
    """`count` queued tasks on a queue no worker reads, created three to a second (ties are
    broken by id); the first `completed` also get a completion time, two to a second."""
    base = datetime.now(UTC) - timedelta(days=1)
    ids = []
    async with make_sessionmaker(engine)() as session, session.begin():
        for i in range(count):
            task = await task_submissions.submit_task(
                session=session,
                spec=task_specs.TaskSpec(task_type="echo", queue="parked", input={"n": i}),
            )
            values: dict[str, Any] = {"created_at": base + timedelta(seconds=i // 3)}
            if i < completed:
                values["completed_at"] = base + timedelta(hours=1, seconds=(i * 7 % completed) // 2)
            await session.execute(update(Task).where(Task.id == task.id).values(**values))
            ids.append(task.id)
    return ids


async def page(client: GraphQLClient, **variables: Any) -> dict[str, Any]:
    connection: dict[str, Any] = (await client.data("Tasks", **variables))["tasks"]
    return connection


def node_ids(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in connection["edges"]]


async def submit_parked(client: GraphQLClient, n: int) -> None:
    for _ in range(n):
        body = await client.data(
            "SubmitTask", input={"taskType": "echo", "queue": "parked", "input": {}}
        )
        assert not body["submitTask"]["errors"]


async def test_walk_sees_every_existing_task_once_while_tasks_arrive_and_change(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    existing = {str(i) for i in await seed(engine, 300)}
    rng = random.Random(7)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        conn = await page(admin, first=50, after=after, orderBy=DESC_CREATED)
        seen += node_ids(conn)
        pages += 1
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        # a live system between two pages: 20 new tasks, and some old ones cancelled
        await submit_parked(admin, 20)
        for task_id in rng.sample(sorted(existing), 5):
            await admin.data("CancelTask", id=task_id)
        assert pages < 20, "the walk does not end"
    assert len(seen) == len(set(seen)), "a task was returned twice"
    assert existing <= set(seen), "a task that existed before the walk was skipped"
    # newer tasks were inserted at the head, behind the reader: none of them is on a page
    assert set(seen) == existing


async def test_filtered_walk_while_tasks_leave_the_filter(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    existing = [str(i) for i in await seed(engine, 120)]
    rng = random.Random(11)
    cancelled: set[str] = set()
    seen: list[str] = []
    after = None
    queued_only = {"status": ["QUEUED"], "queue": ["parked"]}
    while True:
        conn = await page(admin, first=25, after=after, orderBy=DESC_CREATED, filter=queued_only)
        seen += node_ids(conn)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        # tasks move out of the filter on both sides of the reader
        for task_id in rng.sample([t for t in existing if t not in cancelled], 6):
            await admin.data("CancelTask", id=task_id)
            cancelled.add(task_id)
    assert len(seen) == len(set(seen))
    stayed = set(existing) - cancelled
    assert stayed <= set(seen), "a task that stayed queued all along was skipped"
    assert not (set(seen) - set(existing))


async def test_backward_paging_mirrors_forward_paging(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    await seed(engine, 95)
    forward: list[str] = []
    cursors = []
    after = None
    while True:
        conn = await page(admin, first=20, after=after)
        forward += node_ids(conn)
        cursors.append(conn["pageInfo"])
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(forward) == 95 and len(set(forward)) == 95

    # from the end, backwards, with last/before
    backward: list[str] = []
    before = None
    while True:
        conn = await page(admin, last=20, before=before)
        backward = node_ids(conn) + backward
        info = conn["pageInfo"]
        assert info["hasNextPage"] is (before is not None)
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    assert backward == forward
    first_back = await page(admin, last=20)
    assert node_ids(first_back) == forward[-20:]

    # a step back from page 3 lands exactly on page 2
    third = await page(admin, first=20, after=cursors[1]["endCursor"])
    assert third["pageInfo"]["hasPreviousPage"] is True
    back = await page(admin, last=20, before=third["pageInfo"]["startCursor"])
    assert node_ids(back) == forward[20:40]
    assert back["pageInfo"]["hasPreviousPage"] is True and back["pageInfo"]["hasNextPage"]

    # after and before together bound a range
    between = await page(
        admin, first=50, after=cursors[0]["endCursor"], before=cursors[2]["startCursor"]
    )
    assert node_ids(between) == forward[20:40]
    assert between["pageInfo"]["hasNextPage"] is False


async def test_cursors_are_refused_outside_their_list(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    await seed(engine, 10)
    conn = await page(admin, first=3, orderBy=DESC_CREATED)
    cursor = conn["pageInfo"]["endCursor"]

    async def refused(**variables: Any) -> str:
        body = await admin.execute("Tasks", **variables)
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        message: str = error["message"]
        return message

    other_order = {"field": "CREATED_AT", "direction": "ASC"}
    assert "another order or filter" in await refused(first=3, after=cursor, orderBy=other_order)
    assert "another order or filter" in await refused(
        first=3, after=cursor, orderBy={"field": "PRIORITY", "direction": "DESC"}
    )
    assert "another order or filter" in await refused(
        first=3, after=cursor, orderBy=DESC_CREATED, filter={"status": ["QUEUED"]}
    )
    assert "either first or last" in await refused(first=3, last=3)
    assert "last must be between" in await refused(last=0)
    workflows = await admin.execute("Workflows", first=3, after=cursor)
    assert workflows["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # the cursor itself is checked, not trusted: a forged sort value of the wrong type
    raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[1] = "not a time"
    forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()
    assert "does not belong to this order" in await refused(
        first=3, after=forged, orderBy=DESC_CREATED
    )
    # and the same cursor still works where it belongs
    again = await page(admin, first=3, after=cursor, orderBy=DESC_CREATED)
    assert len(again["edges"]) == 3


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_order_by_a_nullable_column(
    admin: GraphQLClient, engine: AsyncEngine, direction: str
) -> None:
    ids = await seed(engine, 40, completed=25)
    order = {"field": "COMPLETED_AT", "direction": direction}
    walked: list[dict[str, Any]] = []
    after = None
    while True:
        conn = await page(admin, first=7, after=after, orderBy=order)
        walked += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(n["id"] for n in walked) == sorted(str(i) for i in ids)

    # expected: non-null times in the direction asked (ties by id the same way), nulls last
    def key(n: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
        return datetime.fromisoformat(n["completedAt"]), uuid.UUID(n["id"])

    done = sorted((n for n in walked if n["completedAt"]), key=key, reverse=direction == "DESC")
    nulls = sorted(
        (n for n in walked if not n["completedAt"]),
        key=lambda n: uuid.UUID(n["id"]),
        reverse=direction == "DESC",
    )
    assert len(done) == 25 and len(nulls) == 15
    assert [n["id"] for n in walked] == [n["id"] for n in done + nulls]

    # the same order read backwards, crossing the boundary between times and nulls
    backward: list[str] = []
    before = None
    while True:
        conn = await page(admin, last=6, before=before, orderBy=order)
        backward = node_ids(conn) + backward
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert backward == [n["id"] for n in walked]


async def test_every_page_seed_001_counts_is_served(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # given more pages than the old bound of 101 (one task a page), created three to a second
    await seed(engine, 130, completed=130)
    async with engine.connect() as conn:
        ordered = await conn.execute(text("SELECT id FROM tasks ORDER BY created_at DESC, id DESC"))
        newest_first = [str(i) for i in ordered.scalars()]
    path = "/api/v1/monitoring/tasks"
    first = (await http.get(path, params={"page_size": 1})).json()
    assert first["total"] == 130 and first["pages"] == 130
    # every page the response counts answers its row, in the order page 1 started
    for page_no in (101, 102, 129, 130):
        body = (await http.get(path, params={"page": page_no, "page_size": 1})).json()
        assert [t["id"] for t in body["items"]] == [newest_first[page_no - 1]], page_no
        assert body["page"] == page_no and body["pages"] == 130
    # a page past the last is empty, not an error
    past = await http.get(path, params={"page": 131, "page_size": 1})
    assert past.status_code == 200 and past.json()["items"] == []
    # deep pages of a tied sort column (completion times, two to a second) cover every row once
    walked: list[str] = []
    for page_no in range(1, 15):
        body = (
            await http.get(
                path,
                params={"page": page_no, "page_size": 10, "sort_by": "completed_at"},
            )
        ).json()
        walked += [t["id"] for t in body["items"]]
    assert sorted(walked) == sorted(newest_first)
    # and the document bounds the parameter only by its size
    spec = (await http.get("/openapi.json")).json()
    params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
    assert params["page"]["schema"]["maximum"] == 2**31 - 1


async def test_every_offset_a_seed_002_list_counts_is_served(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # given 10,050 batches (past the old 10,000-row bound), one a second
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO batches (batch_id, camera_id, status, detection_count, started_at,"
                " last_activity_at, window_ends_at, due_at) SELECT 'b-' || lpad(g::text, 6,"
                " '0'), 'yard', 'completed', 1, now() - g * interval '1 second', now(), now(),"
                " now() FROM generate_series(1, 10050) g"
            )
        )
    body = (await http.get("/api/batches", params={"offset": 10_040, "limit": 50})).json()
    # newest first: offset 10,040 is the 10,041st newest, batch 10,041
    assert [b["batch_id"] for b in body["batches"]] == [f"b-{g:06d}" for g in range(10_041, 10_051)]
    assert body["total"] == 10_050


# --- the newer lists walked while rows arrive: security events, alerts, jobs ----------------------


async def _walk(
    client: GraphQLClient,
    operation: str,
    root: str,
    insert_more: Any,
    **variables: Any,
) -> list[dict[str, Any]]:
    """Every node of a forward walk of 25-row pages, `insert_more()` run between pages."""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(40):
        conn = (await client.data(operation, first=25, after=after, **variables))[root]
        nodes += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return nodes
        after = conn["pageInfo"]["endCursor"]
        await insert_more()
    raise AssertionError(f"the {root} walk does not end")


TIES = "(g % 5) * 20"  # five risk scores, each shared by many events


async def test_security_events_by_risk_score_walk_ties_exactly_once(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    # 120 events over five risk scores (24 to a score: ties broken by id)
    existing = set(await insert_events(engine, 120, risk_score_sql=TIES))

    async def more() -> None:  # new events of every score, some ahead of the reader, some behind
        await insert_events(engine, 10, risk_score_sql=TIES)

    nodes = await _walk(
        admin,
        "SecurityEvents",
        "securityEvents",
        more,
        orderBy={"field": "RISK_SCORE", "direction": "DESC"},
    )
    ids = [int(n["id"]) for n in nodes]
    assert len(ids) == len(set(ids)), "an event was returned twice"
    assert existing <= set(ids), "an event that existed before the walk was skipped"
    order = [(n["riskScore"], int(n["id"])) for n in nodes]
    assert order == sorted(order, reverse=True)


async def test_alerts_and_jobs_walk_every_row_once_while_rows_arrive(
    admin: GraphQLClient, engine: AsyncEngine
) -> None:
    insert_alerts = text(
        "INSERT INTO alerts (id, rule_name, agent_id, type, severity, status, title, message,"
        " metric, operator, threshold, channels, triggered_at, last_occurrence,"
        " occurrence_count, auto_resolved, remediation_attempts) SELECT gen_random_uuid(), 'r',"
        " 'a' || (g % 7), 'threshold', 'warning', 'active', 't', 'm', 'error_rate_percent', '>',"
        " 1, '[]', now() - make_interval(secs => g % 4), now(), 1, false, 0"
        " FROM generate_series(1, :n) g RETURNING id"
    )
    insert_jobs = text(
        "INSERT INTO tasks (id, task_type, operation, status, queue, priority, origin_instance,"
        " input, config, metadata, errors, attempts, max_attempts, retry_count, dead_lettered,"
        " is_resumed, resume_attempt_count, progress, progress_history, input_tokens,"
        " output_tokens, cost_usd, created_at, updated_at, started_at, completed_at, media,"
        " service_requests) SELECT gen_random_uuid(), 'export', 'tasks', 'COMPLETED', 'parked',"
        " 50, 'jobs', '{}', '{}', '{}', '[]', 1, 1, 0, false, false, 0, 100, '[]', 0, 0, 0,"
        " now() - make_interval(secs => g % 4), now(), now(), now(), '{}', '[]'"
        " FROM generate_series(1, :n) g RETURNING id"
    )
    for operation, root, insert in (
        ("Alerts", "alerts", insert_alerts),
        ("Jobs", "jobs", insert_jobs),
    ):
        async with engine.begin() as conn:
            existing = {str(i) for i in (await conn.execute(insert, {"n": 120})).scalars()}

        async def more(insert: Any = insert) -> None:
            async with engine.begin() as conn:
                await conn.execute(insert, {"n": 10})

        nodes = await _walk(admin, operation, root, more)
        ids = [n["id"] for n in nodes]
        assert len(ids) == len(set(ids)), f"a row of {root} was returned twice"
        assert existing <= set(ids), f"a row of {root} that existed before was skipped"
