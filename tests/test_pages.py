"""Pages and files (issue 29), over HTTP against the session's server: every HTML page carries
the page policy (CSP with `frame-ancestors 'none'`, `nosniff`, `Referrer-Policy`), no HTML is
reachable from the asset mount, every response is `nosniff`, export downloads are never
cached, and the console's one-time sign-in code is single-use and short-lived. (The browser
side of the sign-in link is in tests/test_console.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text

from app.config import Settings
from tests.conftest import make_token
from tests.test_jobs import EVENTS, wait_job
from tests.waiting import wait_for

# every HTML page the API serves (the dev settings of the session: GraphiQL is on)
PAGES = [
    ("/console", {}),
    ("/graphql", {"Accept": "text/html"}),
]


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        if part.strip():
            name, *values = part.split()
            parsed[name] = values
    return parsed


def cache_directives(response: httpx.Response) -> set[str]:
    return {d.strip().lower() for d in response.headers.get("cache-control", "").split(",")}


@pytest.fixture
async def anonymous(server: str) -> Any:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


async def test_every_html_page_carries_the_page_headers(anonymous: httpx.AsyncClient) -> None:
    missing: dict[str, list[str]] = {}
    for path, headers in PAGES:
        page = await anonymous.get(path, headers=headers)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html"), path
        policy = directives(page.headers.get("content-security-policy", ""))
        wanted = {
            # never framed (clickjacking), its own origin only, no inline script, no plugins
            "frame-ancestors 'none'": policy.get("frame-ancestors") == ["'none'"],
            "default-src 'self'": policy.get("default-src") == ["'self'"],
            "script-src 'self'": policy.get("script-src") == ["'self'"],
            "object-src 'none'": policy.get("object-src") == ["'none'"],
            "nosniff": page.headers.get("x-content-type-options") == "nosniff",
            "no-referrer": page.headers.get("referrer-policy") == "no-referrer",
        }
        if not all(wanted.values()):
            missing[path] = [name for name, ok in wanted.items() if not ok]
    assert missing == {}


async def test_no_html_comes_from_the_asset_mount(anonymous: httpx.AsyncClient) -> None:
    for name in ("console.html", "graphiql.html"):
        for method in ("GET", "HEAD"):
            for path in (f"/console/assets/{name}", f"/console/assets/vendor/../{name}"):
                r = await anonymous.request(method, path)
                assert r.status_code == 404, (method, path, r.status_code)
                assert not r.headers.get("content-type", "").startswith("text/html"), path
    # the console page is served at /console only; its scripts and styles still load
    for path, media in (
        ("/console/assets/console.js", "javascript"),
        ("/console/assets/graphiql-boot.js", "javascript"),
        ("/console/assets/console.css", "text/css"),
        ("/console/assets/vendor/graphiql.min.css", "text/css"),
    ):
        r = await anonymous.get(path)
        assert r.status_code == 200, path
        assert media in r.headers["content-type"], path
        assert r.headers.get("x-content-type-options") == "nosniff", path


async def test_every_response_is_nosniff(anonymous: httpx.AsyncClient, settings: Settings) -> None:
    admin = {"Authorization": f"Bearer {make_token(settings)}"}
    answers = [
        await anonymous.get("/healthz"),
        await anonymous.get("/openapi.json"),
        await anonymous.get("/api/v1/monitoring/tasks"),  # 401
        await anonymous.get("/api/v1/monitoring/tasks", headers=admin),
        await anonymous.get("/no/such/path"),  # 404
        await anonymous.post("/graphql", json={"query": "{ __typename }"}),  # 401
        await anonymous.post("/graphql", json={"query": "{ __typename }"}, headers=admin),
        await anonymous.post("/console/session", json={"code": "nothing"}),  # 400
        await anonymous.post(
            "/graphql", content=b"x" * (settings.max_body_bytes + 1), headers=admin
        ),  # 413
    ]
    sniffable = [
        (r.request.method, r.url.path, r.status_code)
        for r in answers
        if r.headers.get("x-content-type-options") != "nosniff"
    ]
    assert sniffable == []
    assert {r.status_code for r in answers} >= {200, 400, 401, 404, 413}


async def test_export_downloads_are_never_cached(
    worker: Any, http: httpx.AsyncClient, engine: Any
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(EVENTS), {"n": 3})
    started = await http.post(
        "/api/jobs", json={"job_type": "export", "params": {"target": "security_events"}}
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    job = await wait_job(http, job_id, {"completed", "failed"})
    assert job["status"] == "completed", job

    today = datetime.now(UTC).date()
    metrics = await http.post(
        "/api/v1/monitoring/metrics/export",
        json={
            "metrics": ["requests"],
            "period": {"start": today.isoformat(), "end": today.isoformat()},
            "format": "csv",
            "granularity": "day",
        },
    )
    assert metrics.status_code == 202, metrics.text

    async def finished() -> Any:
        body = (await http.get(metrics.json()["status_url"])).json()
        return body if body["status"] in ("completed", "failed") else None

    export = await wait_for(finished, what="the metrics export to finish", timeout=60)
    assert export["status"] == "completed", export

    for url in (f"/api/jobs/{job_id}/download", export["download_url"]):
        download = await http.get(url)
        assert download.status_code == 200, (url, download.text)
        assert download.headers["content-disposition"].startswith("attachment"), url
        # neither the browser nor a shared cache keeps a tenant's rows after the download
        assert cache_directives(download) == {"no-store", "private"}, url
        assert download.headers.get("x-content-type-options") == "nosniff", url


# --- the console's one-time sign-in code ------------------------------------------------------


def mint(settings: Settings, token: str, ttl_seconds: float = 60) -> str:
    from app.console import codes

    client = redis.Redis.from_url(settings.redis_url)
    try:
        return codes.mint(client, token, ttl_seconds)
    finally:
        client.close()


async def test_a_console_code_gives_its_token_once(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    token = make_token(settings, "viewer")
    code = mint(settings, token)
    first = await anonymous.post("/console/session", json={"code": code})
    assert first.status_code == 200, first.text
    assert first.json() == {"token": token}
    assert "no-store" in cache_directives(first)
    # the token it gave signs in
    viewer = await anonymous.post(
        "/graphql",
        json={"query": "{ viewer { role } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert viewer.json()["data"]["viewer"]["role"] == "viewer"
    # ... and the code is spent
    again = await anonymous.post("/console/session", json={"code": code})
    assert again.status_code == 400, again.text
    assert again.json()["code"] == "invalid_code"
    assert token not in again.text


async def test_a_console_code_is_spent_once_under_concurrent_use(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    code = mint(settings, make_token(settings))
    answers = await asyncio.gather(
        *(anonymous.post("/console/session", json={"code": code}) for _ in range(10))
    )
    assert sorted(r.status_code for r in answers) == [200] + [400] * 9


async def test_an_expired_console_code_gives_nothing(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    code = mint(settings, make_token(settings), ttl_seconds=0.3)
    await asyncio.sleep(0.8)  # the code's 0.3 s pass, with room: its expiry is what is tested
    expired = await anonymous.post("/console/session", json={"code": code})
    assert expired.status_code == 400, expired.text
    assert expired.json()["code"] == "invalid_code"


async def test_the_code_exchange_refuses_what_is_not_a_code(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    for body in (
        {"content": b""},
        {"content": b"not json", "headers": {"Content-Type": "application/json"}},
        {"json": ["a list"]},
        {"json": {"code": 5}},
        {"json": {"code": ""}},
        {"json": {"code": "x" * 10_000}},
    ):
        r = await anonymous.post("/console/session", **body)  # type: ignore[arg-type]
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert r.json()["code"] == "bad_request", body
    # (a GET falls through to the REST mount, which knows no such path)
    assert (await anonymous.get("/console/session")).status_code in (404, 405)
    # an unknown code is refused like a spent one
    r = await anonymous.post("/console/session", json={"code": "made-up-code"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_code")
