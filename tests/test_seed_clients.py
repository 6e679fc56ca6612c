"""What a client written against the seed documents sends and expects (issue 24): ids as the
seeds write them are simply not found."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.config import Settings


@pytest.mark.parametrize("job_id", ["job_abc123", "00000000-0000-0000-0000-000000000001"])
async def test_seed_style_job_ids_are_not_found(http: httpx.AsyncClient, job_id: str) -> None:
    for method, path in (
        ("GET", f"/api/jobs/{job_id}"),
        ("GET", f"/api/jobs/{job_id}/detail"),
        ("GET", f"/api/jobs/{job_id}/history"),
        ("GET", f"/api/jobs/{job_id}/logs"),
        ("GET", f"/api/jobs/{job_id}/download"),
        ("POST", f"/api/jobs/{job_id}/cancel"),
        ("POST", f"/api/jobs/{job_id}/abort"),
        ("DELETE", f"/api/jobs/{job_id}"),
    ):
        r = await http.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert "not found" in r.json()["detail"], (path, r.text)


@pytest.mark.parametrize("alert_id", ["alert_001", "00000000-0000-0000-0000-000000000001"])
async def test_seed_style_alert_ids_are_not_found(http: httpx.AsyncClient, alert_id: str) -> None:
    for action in ("acknowledge", "resolve"):
        r = await http.post(f"/api/v1/monitoring/alerts/{alert_id}/{action}", json={})
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "alert_not_found", r.text


async def test_other_string_ids_answer_their_routes_not_found(http: httpx.AsyncClient) -> None:
    # seed 000: an unknown task is 404 to read and 400 to cancel, whatever its spelling
    assert (await http.get("/api/v1/llm/tasks/task_1")).status_code == 404
    cancel = await http.delete("/api/v1/llm/tasks/task_1")
    assert cancel.status_code == 400, cancel.text
    gone = await http.delete("/api/v1/monitoring/webhooks/sub_1")
    assert gone.status_code == 404 and gone.json()["code"] == "subscription_not_found"
    assert (await http.get("/api/v1/monitoring/metrics/export/exp_1")).status_code == 404
    # and the contract says so: these ids are strings
    doc = (await http.get("/openapi.json")).json()
    parameters = doc["paths"]["/api/jobs/{job_id}"]["get"]["parameters"]
    (job_id,) = [p for p in parameters if p["name"] == "job_id"]
    assert job_id["schema"]["type"] == "string" and "format" not in job_id["schema"]


async def test_seed_003_errors_are_one_string(http: httpx.AsyncClient) -> None:
    missing = await http.post("/api/v1/tasks", json={"profile": "General"})
    assert missing.status_code == 422, missing.text
    assert isinstance(missing.json()["detail"], str) and "prompt" in missing.json()["detail"]
    unstorable = await http.post("/api/v1/tasks", json={"prompt": "a\x00b"})
    assert unstorable.status_code == 422
    assert unstorable.json()["detail"].startswith("body.prompt: must not contain NUL")
    query = await http.get("/api/v1/metrics", params={"x": "a\x00"})
    assert query.status_code == 422 and isinstance(query.json()["detail"], str), query.text
    # the paths beyond seed 003 keep seed 001's list
    batch = await http.post("/api/v1/tasks/batch", json={"tasks": []})
    assert batch.status_code == 422 and isinstance(batch.json()["detail"], list)
    doc = (await http.get("/openapi.json")).json()
    problem = doc["paths"]["/api/v1/tasks"]["post"]["responses"]["422"]["content"]
    ref = problem["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert doc["components"]["schemas"][ref]["properties"]["detail"]["type"] == "string"


async def test_the_jobs_list_says_how_many_match(http: httpx.AsyncClient, engine: Any) -> None:
    from tests.test_jobs import insert_job

    for _ in range(3):
        await insert_job(engine, status="COMPLETED", queue="parked")
    await insert_job(engine, type="cleanup", status="COMPLETED", queue="parked")
    page = (await http.get("/api/jobs", params={"limit": 2, "job_type": "export"})).json()
    assert page["count"] == 2 and page["total"] == 3
    last = (await http.get("/api/jobs", params={"limit": 2, "offset": 2})).json()
    assert last["count"] == 2 and last["total"] == 4


async def test_prompt_import_takes_overwrite_from_the_query_too(http: httpx.AsyncClient) -> None:
    document = {"prompts": {"nemotron": {"system_prompt": "From the query flag."}}}
    skipped = (await http.post("/api/ai-audit/prompts/import", json=document)).json()
    assert skipped["skipped"] == ["nemotron"]
    forced = await http.post(
        "/api/ai-audit/prompts/import", params={"overwrite": "true"}, json=document
    )
    assert forced.status_code == 200 and forced.json()["imported"] == ["nemotron"], forced.text
    current = (await http.get("/api/ai-audit/prompts/nemotron")).json()
    assert current["system_prompt"] == "From the query flag."


async def test_a_mistyped_query_parameter_is_refused_by_name(http: httpx.AsyncClient) -> None:
    # a seed 002 client filtering jobs with a typo gets a 422 naming it, not every job
    typo = await http.get("/api/jobs", params={"stauts": "failed"})
    assert typo.status_code == 422, typo.text
    (error,) = typo.json()["detail"]
    assert error["loc"] == ["query", "stauts"] and "status" in error["msg"]
    # the spelled-right filter still answers
    assert (await http.get("/api/jobs", params={"status": "failed"})).status_code == 200
    # a mistyped flag on prompt import changes nothing and says so
    before = (await http.get("/api/ai-audit/prompts/export")).json()["prompts"]
    flagged = await http.post(
        "/api/ai-audit/prompts/import", params={"overwite": "true"}, json={"prompts": {}}
    )
    assert flagged.status_code == 422 and flagged.json()["detail"][0]["loc"] == [
        "query",
        "overwite",
    ]
    assert (await http.get("/api/ai-audit/prompts/export")).json()["prompts"] == before
    # seed 003's paths answer it in their own shape: one string
    flat = await http.get("/api/v1/metrics", params={"verbose": "1"})
    assert flat.status_code == 422 and "verbose" in flat.json()["detail"]


async def test_every_rest_route_refuses_an_unknown_query_parameter(http: httpx.AsyncClient) -> None:
    # one rule for all routes (a dependency of the REST app), checked on each documented operation
    doc = (await http.get("/openapi.json")).json()
    checked = 0
    for path, operations in doc["paths"].items():
        concrete = "/".join(
            "x" if segment.startswith("{") else segment for segment in path.split("/")
        )
        for method in operations:
            r = await http.request(method.upper(), concrete, params={"zz_unknown": "1"})
            assert r.status_code == 422, (method, path, r.text)
            assert "zz_unknown" in str(r.json()["detail"]), (method, path, r.text)
            checked += 1
    assert checked >= 84


async def test_seed_004_health_names_the_seed_components(
    http: httpx.AsyncClient, redis_client: Any
) -> None:
    before = await redis_client.info("stats")
    body = (await http.get("/api/v1/monitoring/health")).json()
    after = await redis_client.info("stats")
    components = {c["name"]: c for c in body["components"]}
    # the seed's names, each mapped onto a real check, then opsgraph's own beside them
    for name in ("api", "ai_gateway", "model_providers", "vector_db", "cache"):
        assert name in components, (name, body)
    assert {"postgresql", "redis", "workers"} <= set(components)
    assert components["vector_db"]["status"] == components["postgresql"]["status"] == "healthy"
    assert components["vector_db"]["latency_ms"] >= 0
    cache = components["cache"]
    assert cache["status"] == components["redis"]["status"] == "healthy"
    # Redis's keyspace hits over its lookups when the route asked, which was between the two
    # readings here (the counts only grow; the session's workers keep looking keys up)
    hits = (before["keyspace_hits"], after["keyspace_hits"])
    misses = (before["keyspace_misses"], after["keyspace_misses"])
    lowest = round(hits[0] / (hits[0] + misses[1]), 4)
    highest = round(hits[1] / (hits[1] + misses[0]), 4)
    assert isinstance(cache["hit_rate"], float)
    assert lowest <= cache["hit_rate"] <= highest, (cache, before, after)
    assert components["ai_gateway"]["status"] == components["workers"]["status"]
    assert isinstance(components["model_providers"]["providers"], list)


async def test_each_job_type_states_its_parameters_in_the_document(
    http: httpx.AsyncClient,
) -> None:
    doc = (await http.get("/openapi.json")).json()
    body = doc["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert schema["discriminator"]["propertyName"] == "job_type"
    assert set(schema["discriminator"]["mapping"]) == {"export", "ai_processing", "cleanup"}
    evaluate = doc["components"]["schemas"]["Evaluate"]
    assert evaluate["required"] == ["event_ids"], evaluate
    assert evaluate.get("additionalProperties") is False, evaluate
    # what the document says is what the service does: a mistyped key is refused by name
    typo = await http.post("/api/jobs", json={"job_type": "export", "params": {"targt": "tasks"}})
    assert typo.status_code == 422
    assert any(e["loc"][-1] == "targt" for e in typo.json()["detail"]), typo.text
    missing = await http.post("/api/jobs", json={"job_type": "ai_processing"})
    assert missing.status_code == 422 and "params" in str(missing.json()["detail"])
    ok = await http.post("/api/jobs", json={"job_type": "export", "params": {"target": "tasks"}})
    assert ok.status_code == 202, ok.text


class KnownLookups:
    """A Redis whose INFO reports `hits` and `misses` (and which holds no worker)."""

    def __init__(self, hits: int, misses: int) -> None:
        self.stats = {"keyspace_hits": hits, "keyspace_misses": misses}

    async def ping(self) -> bool:
        return True

    async def info(self, section: str) -> dict[str, int]:
        assert section == "stats"
        return self.stats

    async def zrange(self, *_: Any) -> list[bytes]:
        return []


@pytest.mark.parametrize(
    ("hits", "misses", "rate"), [(3, 1, 0.75), (2, 1, 0.6667), (0, 5, 0.0), (0, 0, None)]
)
async def test_the_caches_hit_rate_is_hits_over_lookups(
    engine: Any, settings: Settings, redis_client: Any, hits: int, misses: int, rate: float | None
) -> None:
    """Seed 004's cache `hit_rate`: keyspace hits over lookups (hits and misses) since Redis
    started, to four places; none before any lookup."""
    from app.services.fleet.breakers import Breakers
    from app.services.fleet.health import system_health

    found = await system_health(
        engine=engine,
        redis=KnownLookups(hits, misses),  # type: ignore[arg-type]
        breakers=Breakers(redis_client, settings.breakers),
        services=[],
    )
    assert found.checks["redis"].detail == {"hit_rate": rate}
