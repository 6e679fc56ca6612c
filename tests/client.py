"""The tests' clients: `rest_client` (httpx, carrying a credential) for the REST doors, and
`GraphQLClient` over HTTP and graphql-transport-ws (websockets), whose documents come from
graphql/operations/*.graphql by operation name."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.waiting import wait_for

OPERATIONS = Path(__file__).resolve().parents[1] / "graphql" / "operations"


@cache
def operations() -> dict[str, str]:
    """Every named operation, with the fragments it uses appended."""
    text = "\n".join(p.read_text() for p in sorted(OPERATIONS.glob("*.graphql")))
    blocks = re.split(r"\n(?=(?:query|mutation|subscription|fragment) )", "\n" + text)
    fragments: dict[str, str] = {}
    ops: dict[str, str] = {}
    for block in blocks:
        block = block.strip()
        m = re.match(r"(query|mutation|subscription|fragment) (\w+)", block)
        if not m:
            continue
        (fragments if m.group(1) == "fragment" else ops)[m.group(2)] = block
    out = {}
    for name, body in ops.items():
        used: list[str] = []
        pending = re.findall(r"\.\.\.(\w+)", body)
        while pending:
            frag = pending.pop()
            if frag not in used:
                used.append(frag)
                pending += re.findall(r"\.\.\.(\w+)", fragments[frag])
        out[name] = "\n".join([body, *(fragments[f] for f in used)])
    return out


def credentials(token: str | None = None, *, api_key: str | None = None) -> dict[str, str]:
    """The headers that carry a bearer token and/or an API key (none: anonymous)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def rest_client(
    base_url: str, token: str | None = None, *, api_key: str | None = None
) -> httpx.AsyncClient:
    """An httpx client on `base_url` sending `token` (or `api_key`) with every request; close
    it with `async with` or `aclose()`."""
    return httpx.AsyncClient(
        base_url=base_url, headers=credentials(token, api_key=api_key), timeout=30
    )


class GraphQLClient:
    """`token`'s (or `api_key`'s) GraphQL client; `http` is its REST client too. Close it with
    `async with` or `aclose()`."""

    def __init__(self, base_url: str, token: str | None, *, api_key: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.http = rest_client(base_url, token, api_key=api_key)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> GraphQLClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables})

    async def query(self, document: str, **variables: Any) -> dict[str, Any]:
        """The response body of a document written in the test (not a named operation)."""
        body: dict[str, Any] = (await self.raw(document, variables or None)).json()
        return body

    async def execute(self, operation: str, **variables: Any) -> dict[str, Any]:
        response = await self.raw(operations()[operation], variables)
        body: dict[str, Any] = response.json()
        return body

    async def data(self, operation: str, **variables: Any) -> dict[str, Any]:
        body = await self.execute(operation, **variables)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    @asynccontextmanager
    async def subscribe(
        self, operation: str, *, token: str | None = None, **variables: Any
    ) -> AsyncIterator[Subscription]:
        url = self.base_url.replace("http", "ws", 1) + "/graphql"
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            auth = token if token is not None else self.token
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {auth}"}}
                )
            )
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["type"] == "connection_ack", ack
            sub_id = str(uuid.uuid4())
            await ws.send(
                json.dumps(
                    {
                        "id": sub_id,
                        "type": "subscribe",
                        "payload": {"query": operations()[operation], "variables": variables},
                    }
                )
            )
            yield Subscription(ws, sub_id)


class Subscription:
    def __init__(self, ws: Any, sub_id: str) -> None:
        self.ws = ws
        self.id = sub_id

    async def next(self, timeout: float = 15) -> dict[str, Any]:
        """The next `next` payload's data; fails on errors or timeout."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message["type"] == "next":
                payload = message["payload"]
                assert not payload.get("errors"), payload["errors"]
                data: dict[str, Any] = payload["data"]
                return data
            raise AssertionError(f"unexpected message {message}")

    async def message(self, timeout: float = 15) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return result


async def live_subscriptions(http: httpx.AsyncClient) -> int:
    """The subscriptions the API process holds, as its /metrics counts them (`http` must be
    allowed to read /metrics: a platform admin's)."""
    text = (await http.get("/metrics")).text
    found = re.search(r"^opsgraph_process_subscriptions (\S+)$", text, re.M)
    assert found, "no opsgraph_process_subscriptions in /metrics"
    return int(float(found.group(1)))


@asynccontextmanager
async def live(
    client: GraphQLClient, operation: str, *, reader: GraphQLClient | None = None, **variables: Any
) -> AsyncIterator[Subscription]:
    """`client.subscribe(operation, ...)`, entered once the API process holds the subscription:
    whatever is published from then on reaches it. The first subscriber of its kind only (an
    identical one joins the running stream: nothing new to count). `reader` reads /metrics
    when `client` may not."""
    http = (reader or client).http
    before = await live_subscriptions(http)
    async with client.subscribe(operation, **variables) as sub:
        await wait_for(
            lambda: live_subscriptions(http),
            until=lambda now: now > before,
            what=f"the {operation} subscription to be live",
            timeout=10,
        )
        yield sub
