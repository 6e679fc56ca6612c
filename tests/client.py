"""A small GraphQL client over HTTP (httpx) and graphql-transport-ws (websockets); documents
come from graphql/operations/*.graphql by operation name."""

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


class GraphQLClient:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post("/graphql", json={"query": query, "variables": variables})

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
