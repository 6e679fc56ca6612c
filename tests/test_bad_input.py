"""Bad input gets a clear 4xx or a typed error naming the problem, never a 500, and nothing
is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client import GraphQLClient


async def assert_nothing_written(admin: GraphQLClient) -> None:
    assert (await admin.data("Tasks"))["tasks"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("{ tasks { ", "Syntax Error"),
        ("{ tasks { edges { node { nope } } } }", "Cannot query field 'nope'"),
        ("{ tasks(filter: {status: [DONE]}) { totalCount } }", "DONE"),
        ('{ task(id: "not-a-uuid") { id } }', "UUID"),
        ('{ tasks(filter: {createdAfter: "yesterday"}) { totalCount } }', "yesterday"),
        ("{ tasks(first: 0) { totalCount } }", "first must be between 1 and 100"),
        ("{ tasks(first: 10000) { totalCount } }", "first must be between 1 and 100"),
        ('{ tasks(after: "!!") { totalCount } }', "`after` is not a cursor of this list"),
        ("{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }", "aliases"),
        ('mutation { submitTask(input: {priority: "high"}) { errors { code } } }', "Int"),
    ],
)
async def test_graphql_errors_name_the_problem(
    admin: GraphQLClient, query: str, needle: str
) -> None:
    response = await admin.raw(query)
    assert response.status_code in (200, 400)
    errors = response.json()["errors"]
    assert any(needle.lower() in e["message"].lower() for e in errors), errors
    await assert_nothing_written(admin)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"priority": 101}, "priority"),
        ({"priority": -1}, "priority"),
        ({"taskType": "mine-bitcoin"}, "taskType"),
        ({"operation": "teleport", "taskType": None}, "operation"),
        ({"taskType": "llm", "operation": "echo"}, "operation"),
        ({"taskType": None}, "taskType"),
        ({"queue": "has spaces"}, "queue"),
        ({"input": [1, 2]}, "input"),
        ({"config": "text"}, "config"),
        ({"metadata": 7}, "metadata"),
        ({"webhookUrl": "ftp://example.com/x"}, "webhookUrl"),
        ({"maxRetries": 99}, "maxRetries"),
        ({"config": {"simulate": {"warp": 9}}}, "config"),
        ({"config": {"simulate": {"error": "maybe"}}}, "config"),
        ({"taskType": "llm", "operation": "chat_completion", "input": {}}, "input"),
        ({"originInstance": ""}, "originInstance"),
    ],
)
async def test_submit_rejects_bad_input_as_typed_errors(
    admin: GraphQLClient, overrides: dict[str, Any], field: str
) -> None:
    task_input = {"taskType": "echo", "queue": "parked", **overrides}
    task_input = {k: v for k, v in task_input.items() if v is not None}
    payload = (await admin.data("SubmitTask", input=task_input))["submitTask"]
    assert payload["task"] is None
    assert payload["errors"][0]["field"] == field
    assert payload["errors"][0]["code"] == "INVALID" and payload["errors"][0]["message"]
    await assert_nothing_written(admin)


async def test_unknown_ids_in_mutations_are_typed_errors(admin: GraphQLClient) -> None:
    missing = "11111111-1111-1111-1111-111111111111"
    assert (await admin.data("CancelTask", id=missing))["cancelTask"]["errors"][0][
        "code"
    ] == "NOT_FOUND"
    assert (await admin.data("Task", id=missing))["task"] is None


async def test_oversized_and_malformed_bodies(admin: GraphQLClient) -> None:
    http = admin.http
    huge = "x" * 1_100_000
    response = await http.post(
        "/graphql", json={"query": "{ __typename }", "variables": {"pad": huge}}
    )
    assert response.status_code == 413
    response = await http.post("/api/v1/tasks", json={"prompt": huge})
    assert response.status_code == 413
    assert response.json()["detail"][0]["msg"] == "request body too large"

    response = await http.post(
        "/graphql", content=b"[1, 2", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    response = await http.post("/graphql", json=[1, 2])
    assert 400 <= response.status_code < 500

    for body in (
        b"[1]",
        b'"prompt"',
        b"{}",
        b'{"prompt": ""}',
        b'{"prompt": 5}',
        b"{nope",
        b'{"prompt": "x", "profile": ""}',
    ):
        response = await http.post(
            "/api/v1/tasks", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, body
        detail = response.json()["detail"]
        # seed 003's error body: one string naming where the input is wrong
        assert isinstance(detail, str) and detail.startswith("body"), (body, detail)
    await assert_nothing_written(admin)


async def test_unknown_paths_and_methods_are_4xx(admin: GraphQLClient) -> None:
    assert (await admin.http.get("/api/v1/nowhere")).status_code == 404
    assert (await admin.http.delete("/api/v1/monitoring/tasks")).status_code == 405


async def test_unexpected_errors_are_masked() -> None:
    """The schema's masking extension on resolvers that fail in each way a resolver can."""
    import strawberry
    from graphql import GraphQLError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from app.config import Settings
    from app.gql.schema import MaskUnexpected, build_schema

    @strawberry.type
    class Query:
        @strawberry.field
        def bug(self) -> int:
            raise RuntimeError("password=hunter2 in SELECT * FROM secrets")

        @strawberry.field
        def outage(self) -> int:
            raise RedisConnectionError("redis at 10.0.0.5:6379 refused")

        @strawberry.field
        def expected(self) -> int:
            raise GraphQLError("first must be between 1 and 100")

    # the masking the application's schema is built with
    (masking,) = [e for e in build_schema(Settings()).extensions if isinstance(e, MaskUnexpected)]
    schema = strawberry.Schema(query=Query, extensions=[masking])
    result = await schema.execute("{ bug }")
    assert result.errors is not None
    assert result.errors[0].message == "Unexpected error."
    result = await schema.execute("{ outage }")
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAVAILABLE"}
    assert "10.0.0.5" not in result.errors[0].message
    result = await schema.execute("{ expected }")
    assert result.errors is not None
    assert result.errors[0].message == "first must be between 1 and 100"


async def test_query_cost_is_echoed_and_limited(admin: GraphQLClient) -> None:
    body = await admin.execute("Tasks", first=10)
    cost = body["extensions"]["cost"]
    assert cost["maximumAvailable"] == 25_000
    # the document decides, whatever the variables say: $first has no default, so the largest
    # page (100) counts: 1 + 100 x (totalCount 1 + pageInfo 5 + edges (1 + cursor 1 + node 8))
    assert cost["requestedQueryCost"] == 1 + 100 * (1 + 5 + 10)

    fields = "id status transitions { toStatus at reason } logs { message level at }"
    many = " ".join(
        f"t{i}: tasks(first: 100) {{ edges {{ node {{ {fields} }} }} }}" for i in range(25)
    )
    response = await admin.raw("{ " + many + " }")
    errors = response.json()["errors"]
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert errors[0]["extensions"]["cost"]["requestedQueryCost"] > 25_000
