"""Errors that leak nothing (issue 29): a job's parameters are checked against what PostgreSQL
holds when the job starts (both doors, naming the parameter); every value is checked against its
column's bounds before it is stored (REST 422 and GraphQL typed errors naming the field, nothing
written); a task's recorded error is a safe message with a ref (the details under that ref in
the worker's log), and a data error is not retried. Real API and worker processes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.client import GraphQLClient
from tests.waiting import wait_for

JOBS = "/api/jobs"
LEAKS = ("SQL", "parameters", "DBAPIError", "asyncpg", "SELECT", "WHERE", "$1", "Traceback")
REF = re.compile(r"\(ref ([0-9a-f]{12})\)")

# a job queued as an older version stored it (before start checked its parameters): the
# reconciler finds it QUEUED and missing from Redis, and a worker runs it
QUEUED_JOB = """
INSERT INTO tasks (id, task_type, operation, status, queue, priority, origin_instance,
  origin_tenant_id, input, config, metadata, errors, attempts, max_attempts, retry_count,
  dead_lettered, is_resumed, resume_attempt_count, progress, progress_history, input_tokens,
  output_tokens, cost_usd, created_at, updated_at, media, service_requests)
VALUES (:id, 'export', :op, 'QUEUED', 'default', 50, 'jobs', :tenant, CAST(:input AS jsonb),
  '{}', '{}', '[]', 0, :max_attempts, 0, false, false, 0, 0, '[]', 0, 0, 0,
  now() - interval '5 seconds', now() - interval '5 seconds', '{}', '[]')
"""


async def count(engine: Any, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def queue_job(
    engine: Any, params: dict[str, Any], *, tenant: str | None, max_attempts: int = 3
) -> str:
    job_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(QUEUED_JOB),
            {
                "id": job_id,
                "op": params["target"],
                "tenant": tenant,
                "input": json.dumps({**params, "tenant_id": tenant}),
                "max_attempts": max_attempts,
            },
        )
    return job_id


async def finished(rest: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def probe() -> Any:
        job = (await rest.get(f"{JOBS}/{job_id}")).json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    return dict(await wait_for(probe, what=f"job {job_id} to finish", timeout=60))


def leaks(texts: list[str]) -> list[str]:
    return [t for t in texts if any(word in t for word in LEAKS)]


def loc_names(response: httpx.Response) -> list[str]:
    """Every loc of a 422, joined (`body.params.since`)."""
    return [".".join(str(p) for p in item["loc"]) for item in response.json()["detail"]]


# --- a job's parameters, checked when it starts ---------------------------------------------


async def test_a_since_outside_the_timestamp_range_is_refused_at_start_naming_it(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    engine: Any,
) -> None:
    """0001-01-01T00:00:00+05:00 is 0000-12-31T19:00Z: no timestamp PostgreSQL is sent holds
    it. Refused at start on both doors, naming `since`; year 1 in UTC is fine."""
    rest = client_for("tenant_admin", "A").http
    gql = client_for("tenant_admin", "A")
    for key, value in (("since", "0001-01-01T00:00:00+05:00"), ("until", "9999-12-31T23:00-05:00")):
        params = {"target": "logs", key: value}
        refused = await rest.post(JOBS, json={"job_type": "export", "params": params})
        assert refused.status_code == 422, refused.text
        assert any(name.endswith(key) for name in loc_names(refused)), refused.text
        payload = (await gql.data("StartJob", type="export", params=params))["startJob"]
        assert payload["job"] is None, payload
        (error,) = payload["errors"]
        assert error["field"] == f"params.{key}" and error["code"] == "INVALID", error
        assert "0001-01-01" in error["message"] and not leaks([error["message"]]), error
    assert await count(engine, "tasks") == 0

    started = await rest.post(
        JOBS,
        json={"job_type": "export", "params": {"target": "logs", "since": "0001-01-01T00:00:00Z"}},
    )
    assert started.status_code == 202, started.text
    done = await finished(rest, started.json()["job_id"])
    assert done["status"] == "completed" and done["error_message"] is None, done


async def test_a_huge_number_in_job_parameters_is_refused_naming_it(
    client_for: Callable[..., GraphQLClient],
    admin: GraphQLClient,
    engine: Any,
) -> None:
    huge = 99999999999999999999
    rest = client_for().http
    params = {"target": "security_events", "min_risk_score": huge}
    refused = await rest.post(JOBS, json={"job_type": "export", "params": params})
    assert refused.status_code == 422, refused.text
    assert any(name.endswith("min_risk_score") for name in loc_names(refused)), refused.text
    payload = (await admin.data("StartJob", type="export", params=params))["startJob"]
    assert payload["job"] is None, payload
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [
        ("params.min_risk_score", "INVALID")
    ]
    # an event id is compared with a BIGINT column: its range is the column's
    events = {"event_ids": [1, 2**70]}
    payload = (await admin.data("StartJob", type="ai_processing", params=events))["startJob"]
    assert payload["job"] is None, payload
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("params.event_ids", "INVALID")]
    assert await count(engine, "tasks") == 0


# --- what a failed job records ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "tenant"),
    [
        ({"target": "logs", "since": "0001-01-01T00:00:00+05:00"}, "A"),
        ({"target": "security_events", "min_risk_score": 99999999999999999999}, None),
    ],
    ids=["year-one-since", "huge-min-risk-score"],
)
async def test_a_job_failing_on_a_data_error_runs_once_and_records_a_safe_error(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    params: dict[str, Any],
    tenant: str | None,
    engine: Any,
) -> None:
    job_id = await queue_job(engine, params, tenant=tenant, max_attempts=3)
    rest = client_for("tenant_admin", tenant).http if tenant else client_for().http
    job = await finished(rest, job_id)
    assert job["status"] == "failed", job
    error = job["error_message"]
    assert not leaks([error]), error
    found = REF.search(error)
    assert found and "data error" in error, error

    gql = client_for("tenant_admin", tenant) if tenant else client_for()
    seen = (await gql.data("Job", id=job_id))["job"]
    assert seen["attempts"] == 1, seen  # not retried: the same data fails the same way
    readable = [
        seen["errorMessage"],
        *(t["reason"] or "" for t in seen["transitions"]),
        *(line["message"] for line in seen["logs"]),
        *(await gql.data("Task", id=job_id))["task"]["errors"],
    ]
    assert not leaks(readable), readable

    # the details are in the worker's log, under the ref
    ref = found.group(1)

    def logged() -> str | None:
        out = worker.output()
        at = out.find(f"ref {ref}")
        return out[at : at + 20_000] if at >= 0 else None

    details = await wait_for(logged, what=f"ref {ref} in the worker's log", timeout=10)
    assert "DBAPIError" in details or "DataError" in details, details[:2000]


async def test_an_unexpected_handler_error_is_retried_and_recorded_as_internal_error(
    worker: Any,
    client_for: Callable[..., GraphQLClient],
    engine: Any,
) -> None:
    """Not a data error (a handler bug, here a date it cannot read): retried as before, and
    recorded as "internal error (ref ...)", never the exception's text."""
    job_id = await queue_job(
        engine, {"target": "logs", "since": "yesterday at noon"}, tenant="A", max_attempts=2
    )
    job = await finished(client_for("tenant_admin", "A").http, job_id)
    assert job["status"] == "failed", job
    task = (await client_for("tenant_admin", "A").data("Task", id=job_id))["task"]
    assert task["attempts"] == 2 and len(task["errors"]) == 2, task
    for error in task["errors"]:
        assert REF.search(error) and "internal error" in error, error
        assert "yesterday" not in error and "isoformat" not in error, error


def test_provider_messages_lose_addresses_and_sql() -> None:
    from types import SimpleNamespace

    from workers.providers import ProviderError
    from workers.runner import provider_error

    task: Any = SimpleNamespace(id="t1")
    plain = ProviderError("simulated failure on attempt 2", retryable=True)
    assert provider_error(task, plain) == "simulated failure on attempt 2"
    addressed = ProviderError(
        'provider unreachable: ConnectError("connect to http://vllm.internal:8000/v1 failed'
        " ('10.0.3.7', 8000)\") via db.corp.local:5432",
        retryable=True,
    )
    said = provider_error(task, addressed)
    assert said.startswith("provider unreachable") and REF.search(said), said
    for internal in ("vllm.internal", "10.0.3.7", "db.corp.local", "http://"):
        assert internal not in said, said
    sql = ProviderError("bad [SQL: SELECT 1] [parameters: (1,)]", retryable=False)
    assert not leaks([provider_error(task, sql)])


# --- every column's bounds, checked before the flush -------------------------------------------


async def test_a_value_longer_than_its_column_is_refused_naming_the_field(
    admin: GraphQLClient, engine: Any
) -> None:
    steps_gql = [{"stepId": "a", "taskType": "echo"}]
    steps_rest = [{"step_id": "a", "task_type": "echo"}]
    for field, value in (("name", "n" * 600), ("origin_reference", "r" * 300)):
        camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), field)
        payload = (
            await admin.data(
                "CreateWorkflow", input={"name": "wf", "steps": steps_gql, camel: value}
            )
        )["createWorkflow"]
        assert payload["workflow"] is None, payload
        (error,) = payload["errors"]
        assert error["field"] == field and error["code"] == "INVALID", error
        assert "255 characters" in error["message"], error

        response = await admin.http.post(
            "/api/v1/workflows", json={"name": "wf", "steps": steps_rest, field: value}
        )
        assert response.status_code == 422, response.text
        (item,) = response.json()["detail"]
        assert item["loc"] == ["body", field], item
        assert "255" in item["msg"] and "cannot be stored" not in item["msg"], item
    assert await count(engine, "workflows") == 0
    assert await count(engine, "tasks") == 0


async def test_a_task_field_longer_than_its_column_is_refused_naming_it(
    admin: GraphQLClient, engine: Any
) -> None:
    """Task submissions write through their own statement, not a flush: checked all the same."""
    before = await count(engine, "tasks")
    item = {"taskType": "echo", "queue": "parked", "originZone": "z" * 300}
    payload = (await admin.data("SubmitTask", input=item))["submitTask"]
    assert payload["task"] is None, payload
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("originZone", "INVALID")]
    assert "at most 255 characters" in payload["errors"][0]["message"]
    many = (await admin.data("SubmitTasks", input=[item, {**item, "originZone": "ok"}]))[
        "submitTasks"
    ]
    assert many["submitted"] == 0 and [(e["index"], e["field"]) for e in many["errors"]] == [
        (0, "originZone")
    ], many
    assert await count(engine, "tasks") == before


async def test_an_unstorable_value_a_resolver_does_not_catch_is_bad_user_input() -> None:
    """The schema's masking answers it BAD_USER_INPUT naming the field, not `Unexpected
    error.`; the REST handler answers seed 001's 422 with the field in `loc`."""
    import strawberry
    from fastapi import FastAPI

    from app.config import Settings
    from app.gql.schema import MaskUnexpected, build_schema
    from app.platform.storable import Unstorable
    from app.rest import errors

    @strawberry.type
    class Query:
        @strawberry.field
        def store(self) -> int:
            raise Unstorable("origin_zone must be at most 255 characters", field="origin_zone")

    # the masking the application's schema is built with
    (masking,) = [e for e in build_schema(Settings()).extensions if isinstance(e, MaskUnexpected)]
    schema = strawberry.Schema(query=Query, extensions=[masking])
    result = await schema.execute("{ store }")
    assert result.errors is not None
    assert result.errors[0].message == "origin_zone must be at most 255 characters"
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "origin_zone"}

    app = FastAPI()
    errors.install(app)

    @app.post("/things")
    async def things() -> None:
        raise Unstorable("steps[2].queue must be at most 64 characters", field="steps[2].queue")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/things")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "steps", 2, "queue"]
