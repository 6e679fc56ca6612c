"""Hostile input answered as bad input: text PostgreSQL cannot store, numbers posing as dates,
methods a path does not serve; no SQL text in any answer, no outage reported for bad data, user
errors logged without tracebacks; and seed 000's drain estimate before any history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client import GraphQLClient

NUL_PARAMS = [
    ("/api/v1/monitoring/stats", {"origin_zone": "a\x00b"}, ["query", "origin_zone"]),
    ("/api/v1/monitoring/tasks", {"origin_instance": "\x00"}, ["query", "origin_instance"]),
    ("/api/v1/monitoring/workflows", {"search": "x\x00"}, ["query", "search"]),
    ("/api/enrichment", {"camera_id": "cam\x00"}, ["query", "camera_id"]),
    ("/api/batches", {"camera_id": "\x00"}, ["query", "camera_id"]),
]


@pytest.mark.parametrize(("path", "params", "loc"), NUL_PARAMS)
async def test_nul_in_a_query_parameter_is_422(
    admin: GraphQLClient, path: str, params: dict[str, str], loc: list[str]
) -> None:
    response = await admin.http.get(path, params=params)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == loc and "NUL" in error["msg"]


async def test_nul_and_lone_surrogates_in_bodies_and_paths_are_422(admin: GraphQLClient) -> None:
    nul = await admin.http.post("/api/v1/tasks", json={"prompt": "a\x00b"})
    assert nul.status_code == 422
    # seed 003's path: its error body is one string naming the field
    assert nul.json()["detail"].startswith("body.prompt: ")
    # a lone surrogate is valid JSON text but no valid UTF-8 string
    lone = await admin.http.post(
        "/api/v1/tasks",
        content=b'{"prompt": "ok", "role": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert lone.status_code == 422
    assert lone.json()["detail"].startswith("body.role: ")
    assert "surrogate" in lone.json()["detail"]
    nested = await admin.http.post(
        "/api/v1/workflows",
        json={
            "name": "w",
            "steps": [{"step_id": "a", "task_type": "echo", "config": {"k": "\x00"}}],
        },
    )
    assert nested.status_code == 422
    assert nested.json()["detail"][0]["loc"] == ["body", "steps", 0, "config", "k"]
    not_json = await admin.http.post(
        "/api/v1/tasks",
        content=b'{"prompt": "ok", "profile": Infinity}',
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422 and "Infinity" in not_json.json()["detail"]
    in_path = await admin.http.get("/api/batches/batch%00x")
    assert in_path.status_code == 422 and in_path.json()["detail"][0]["loc"] == ["path"]
    not_utf8 = await admin.http.get("/api/v1/monitoring/tasks?origin_zone=%ff")
    assert not_utf8.status_code == 422
    # nothing was written by any of them
    assert (await admin.data("Tasks"))["tasks"]["totalCount"] == 0


async def test_graphql_refuses_unstorable_text_naming_the_argument(admin: GraphQLClient) -> None:
    body = await admin.execute(
        "SubmitTask", input={"operation": "chat_completion", "input": {"prompt": "a\x00b"}}
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "$input.input.prompt"
    for query, field in (
        ('{ taskStats(originZone: "Q\\u0000") { __typename } }', "originZone"),
        ('{ workflowStats(originInstance: "\\u0000") { totalWorkflows } }', "originInstance"),
        ('{ tasks(filter: {originZone: "\\u0000"}) { totalCount } }', "filter.originZone"),
    ):
        response = await admin.raw(query)
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["extensions"]["field"] == field
        assert "SELECT" not in error["message"] and "sqlalchemy" not in error["message"]
    assert (await admin.data("Tasks"))["tasks"]["totalCount"] == 0


@pytest.mark.parametrize("path", ["/api/v1/monitoring/tasks", "/api/v1/monitoring/workflows"])
async def test_datetimes_are_iso_8601_only(admin: GraphQLClient, path: str) -> None:
    for bad in ("0.5", "1700000000", "yesterday"):
        response = await admin.http.get(path, params={"created_before": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", "created_before"]
    for good in ("2026-01-24T19:30:00Z", "2026-01-24T19:30:00.123+02:00", "2026-01-24"):
        assert (await admin.http.get(path, params={"created_before": good})).status_code == 200


async def test_allow_header_names_every_method_a_path_serves(admin: GraphQLClient) -> None:
    # GET and DELETE are two routes on one path: both are named
    response = await admin.http.request("PATCH", "/api/v1/llm/tasks")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD"
    options = await admin.http.request("OPTIONS", "/api/v1/llm/stats")
    assert options.status_code == 405 and options.headers["allow"] == "DELETE, GET, HEAD"
    assert (await admin.http.request("PUT", "/api/dlq/dlq:llm")).headers["allow"] == "DELETE"


async def test_drain_estimate_before_any_task_completed(admin: GraphQLClient) -> None:
    for _ in range(3):
        await admin.data(
            "SubmitTask",
            input={"operation": "chat_completion", "queue": "cold-start", "input": {"prompt": "x"}},
        )
    stats = (await admin.http.get("/api/v1/llm/stats")).json()["data"]
    assert stats["total_queued"] == 3
    assert stats["estimated_completion_time_seconds"] > 0
    assert stats["estimated_completion_times_human"]["cold-start"] != "0s"


async def test_user_errors_are_logged_without_tracebacks(
    admin: GraphQLClient, logs: Path, server: str
) -> None:
    port = server.rsplit(":", 1)[1]
    log = logs / f"server-{port}.log"
    before = log.read_text() if log.exists() else ""
    body = await admin.execute("Tasks", first=1000)
    assert body["errors"][0]["message"] == "first must be between 1 and 100"
    await admin.raw('{ taskStats(originZone: "\\u0000") { __typename } }')
    after = log.read_text()[len(before) :]
    assert "Traceback" not in after


async def test_unstorable_text_over_websockets(admin: GraphQLClient) -> None:
    async with admin.subscribe("TaskUpdated", queue="\x00") as sub:
        message: dict[str, Any] = await sub.message()
    assert message["type"] in ("error", "next")
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.fixture
async def anonymous(server: str) -> Any:
    async with httpx.AsyncClient(base_url=server) as client:
        yield client


async def test_hygiene_runs_before_authentication_leaks_nothing(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/api/v1/monitoring/stats", params={"origin_zone": "\x00"})
    assert response.status_code in (401, 422)
    assert "SELECT" not in response.text
