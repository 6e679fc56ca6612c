"""Contract and fuzzing against the running API: schemathesis over /openapi.json with every
check, a GraphQL fuzz run that fails on any internal or store error, and property tests that
feed arbitrary text and JSON to the write paths and every filter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import api_keys
from app.db.base import make_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
# Bounded for CI; docs/hostile-input.md says how to run a longer one.
REST_EXAMPLES = int(os.environ.get("OPSGRAPH_FUZZ_EXAMPLES", "10"))
GRAPHQL_EXAMPLES = int(os.environ.get("OPSGRAPH_FUZZ_GRAPHQL_EXAMPLES", "8"))
SERVER_ERROR_CODES = {"UNAVAILABLE", "INTERNAL_SERVER_ERROR"}


@pytest.fixture
async def api_key(engine: AsyncEngine) -> str:
    async with make_sessionmaker(engine)() as session, session.begin():
        _, key = await api_keys.create_api_key(
            session=session, name="fuzzer", role="platform_admin", tenant_id=None
        )
    return key


@pytest.mark.timeout(3600)  # the run at 100 examples per operation (docs/hostile-input.md)
def test_rest_contract_schemathesis(
    server: str, token_for: Callable[..., str], api_key: str
) -> None:
    """schemathesis 4 with `--checks all` (exceptions, each with its reason, are in
    schemathesis.toml); any failure fails the test with schemathesis's own report."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(REST_EXAMPLES),
        "--seed",
        "20261125",
        # one worker: with several, CPython's ast module (used by hypothesis to describe
        # strategies) can fail with "AST constructor recursion depth mismatch" across threads
        "--workers",
        "1",
        "--no-color",
        "-H",
        f"Authorization: Bearer {token_for()}",
        "-H",
        f"X-API-Key: {api_key}",
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3500)
    # the report without its long reproduction bodies, so every failure's heading shows
    report = "\n".join(line[:400] for line in run.stdout.splitlines() if line.strip())
    assert run.returncode == 0, report[-12000:] + run.stderr[-2000:]


def _graphql_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in body.get("errors") or []
        if e.get("message") == "Unexpected error."
        or (e.get("extensions") or {}).get("code") in SERVER_ERROR_CODES
    ]


def _json_nodes() -> Any:
    """GraphQL literals of any JSON value, for the `JSON` scalar's input positions."""

    leaves = st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    )
    names = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,10}\Z")

    def containers(children: Any) -> Any:
        field = st.builds(
            lambda k, v: graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v),
            names,
            children,
        )
        return st.one_of(
            st.lists(children, max_size=4).map(nodes.List),
            st.lists(field, max_size=4, unique_by=lambda f: f.name.value).map(nodes.Object),
        )

    return st.recursive(leaves, containers, max_leaves=12)


@pytest.mark.timeout(3600)  # the longer run of docs/hostile-input.md
def test_graphql_fuzz_finds_no_internal_errors(server: str, token_for: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    schemathesis.graphql.scalar("JSON", _json_nodes())
    schema = schemathesis.graphql.from_url(f"{server}/graphql", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    found: list[Any] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=GRAPHQL_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
            database=None,
        )
        def fuzz(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.operation.label, response.text[:500])
            problems = _graphql_problems(response.json())
            if problems:
                found.append((case.operation.label, case.body, problems))

        fuzz()
    assert not found, json.dumps(found[:5], default=str)[:4000]


# --- property tests: arbitrary text and JSON never make a 5xx or an outage -----------------

text = st.text(max_size=40)  # any code point: NUL, surrogates, controls
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
FILTERS = [
    ("/api/v1/monitoring/tasks", ["origin_instance", "origin_zone", "search", "task_type"]),
    ("/api/v1/monitoring/stats", ["origin_zone", "origin_instance"]),
    ("/api/v1/monitoring/workflows", ["search", "origin_zone", "created_after"]),
    ("/api/enrichment", ["camera_id", "detection_type", "start_date"]),
    ("/api/batches", ["camera_id", "status"]),
]
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def _readable_4xx_or_2xx(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert detail, response.text
        assert "SELECT" not in response.text and "sqlalchemy" not in response.text


def test_arbitrary_filters_are_answered(server: str, token_for: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    with httpx.Client(base_url=server, headers=headers, timeout=30) as http:

        @PROPERTY
        @given(which=st.sampled_from(FILTERS), value=text, pick=st.integers(0, 3))
        def probe(which: tuple[str, list[str]], value: str, pick: int) -> None:
            path, names = which
            name = names[pick % len(names)]
            try:
                response = http.get(path, params={name: value})
            except UnicodeEncodeError:
                return  # httpx cannot put a lone surrogate into a URL at all
            _readable_4xx_or_2xx(response)

        probe()


def test_arbitrary_bodies_to_the_write_paths(server: str, token_for: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {token_for()}"}
    with httpx.Client(base_url=server, headers=headers, timeout=30) as http:

        @PROPERTY
        @given(prompt=text, extra=json_values)
        def rest(prompt: str, extra: Any) -> None:
            body = json.dumps({"prompt": prompt, "profile": extra}).encode()
            response = http.post(
                "/api/v1/tasks", content=body, headers={"Content-Type": "application/json"}
            )
            _readable_4xx_or_2xx(response)

        @PROPERTY
        @given(payload=json_values, name=text)
        def graphql(payload: Any, name: str) -> None:
            query = """mutation($input: SubmitTaskInput!) {
              submitTask(input: $input) { task { id } errors { code message } } }"""
            variables = {
                "input": {
                    "operation": "chat_completion",
                    "queue": "fuzzq",
                    "input": {"prompt": name, "extra": payload},
                    "metadata": payload if isinstance(payload, dict) else {"v": payload},
                    "originZone": name,
                }
            }
            body = json.dumps({"query": query, "variables": variables}).encode()
            response = http.post(
                "/graphql", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code < 500, response.text[:300]
            problems = _graphql_problems(response.json())
            assert not problems, problems
            for error in response.json().get("errors") or []:
                assert error["extensions"]["code"] == "BAD_USER_INPUT", error

        rest()
        graphql()
