"""Method guard: a method a path does not serve is 405 with an `Allow` header listing exactly
the methods the OpenAPI document gives that path (the router alone would name only the first
route it tried when several routes share a path)."""

from __future__ import annotations

import json
import re

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send


class MethodGuard:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], int, frozenset[str]]] | None = None

    def _paths(self) -> list[tuple[re.Pattern[str], int, frozenset[str]]]:
        if self._table is None:
            table = []
            for template, operations in self.app.openapi().get("paths", {}).items():
                literal_parts = re.split(r"\{[^}]+\}", template)
                pattern = "[^/]+".join(re.escape(part) for part in literal_parts)
                methods = {m.upper() for m in operations}
                if "GET" in methods:
                    methods.add("HEAD")
                params = len(literal_parts) - 1
                table.append((re.compile(f"^{pattern}$"), params, frozenset(methods)))
            self._table = table
        return self._table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            matched = [(n, methods) for pattern, n, methods in self._paths() if pattern.match(path)]
            if matched:
                # the most literal template wins (/api/dlq/stats, not /api/dlq/{queue_name})
                fewest = min(n for n, _ in matched)
                allowed: frozenset[str] = frozenset().union(
                    *(methods for n, methods in matched if n == fewest)
                )
                if scope["method"] not in allowed:
                    await _not_allowed(send, sorted(allowed))
                    return
        await self.app(scope, receive, send)


async def _not_allowed(send: Send, allowed: list[str]) -> None:
    body = json.dumps({"detail": "Method Not Allowed"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 405,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"allow", ", ".join(allowed).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
