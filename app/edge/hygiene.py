"""One input-hygiene rule at the edge: text PostgreSQL cannot store (NUL characters, unpaired
UTF-16 surrogates, bytes that are not UTF-8) and JSON nested deeper than MAX_JSON_DEPTH are
refused as bad input naming where it was, before any handler runs: 422 with seed 001's `detail`
list for REST, BAD_USER_INPUT for GraphQL.

An error text as a tenant may read it (redact_internal). What a column can hold is checked
where values reach PostgreSQL (app/platform/storable.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NUL = "must not contain NUL characters (\\u0000)"
SURROGATE = "must not contain unpaired surrogates (\\ud800-\\udfff)"
NOT_UTF8 = "must be valid UTF-8"
MAX_JSON_DEPTH = 64  # arrays and objects inside one another, in a body or a variable
TOO_DEEP = f"must not be nested more than {MAX_JSON_DEPTH} levels"


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE
    return None


def json_problems(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (path, problem) in a decoded JSON value, keys included; a value nested deeper than
    MAX_JSON_DEPTH is one problem, at the first level too deep. Iterative: no input can
    exhaust the interpreter's stack."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, path, 0)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                yield at, problem
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            yield at, TOO_DEEP
            return
        if isinstance(item, dict):
            children: list[tuple[Any, tuple[str | int, ...], int]] = []
            for key, child in item.items():
                problem = text_problem(str(key))
                if problem:
                    yield (*at, str(key).encode("utf-8", "backslashreplace").decode()), problem
                children.append((child, (*at, key), depth + 1))
        else:
            children = [(child, (*at, i), depth + 1) for i, child in enumerate(item)]
        stack.extend(reversed(children))  # in document order


def _printable(part: str | int) -> str | int:
    return part if isinstance(part, int) else part.encode("utf-8", "backslashreplace").decode()


class InputHygiene:
    """ASGI middleware for the REST shims: path, query string and JSON body."""

    def __init__(self, app: ASGIApp, *, flat_paths: frozenset[str] = frozenset()) -> None:
        """`flat_paths` answer `{"detail": "string"}` (seed 003's shape) instead of the list."""
        self.app = app
        self.flat_paths = flat_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        flat = scope["path"] in self.flat_paths
        problem = self._path_or_query(scope)
        if problem is not None:
            await _reject(send, *problem, flat=flat)
            return
        headers = dict(scope["headers"])
        if b"json" not in headers.get(b"content-type", b"") or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        found = _body_problem(body)
        if found is not None:
            await _reject(send, *found, flat=flat)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _path_or_query(self, scope: Scope) -> tuple[list[str | int], str] | None:
        problem = text_problem(scope["path"])
        if problem:
            return ["path"], problem
        raw = scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            return ["query"], NOT_UTF8
        for name, value in pairs:
            problem = text_problem(name) or text_problem(value)
            if problem:
                return ["query", _printable(name)], problem  # type: ignore[list-item]
        return None


class _NotJson(ValueError):
    pass


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity; JSON has neither (and no answer could echo them)
    raise _NotJson(f"{constant} is not a JSON value")


def _body_problem(body: bytes) -> tuple[list[str | int], str] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ["body"], NOT_UTF8
    try:
        value = json.loads(text, parse_constant=_not_json)
    except _NotJson as exc:
        return ["body"], str(exc)
    except RecursionError:  # deeper than the decoder goes: far past MAX_JSON_DEPTH
        return ["body"], TOO_DEEP
    except ValueError:
        return None  # not JSON: the route's own validation says so
    for path, problem in json_problems(value):
        return ["body", *(_printable(p) for p in path)], problem
    return None


async def _reject(send: Send, loc: list[str | int], message: str, *, flat: bool = False) -> None:
    detail: Any = (
        ".".join(str(p) for p in loc) + ": " + message
        if flat
        else [{"loc": loc, "msg": message, "type": "value_error.text"}]
    )
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- what a tenant may read in an error ---------------------------------------------------------

_INTERNAL_TEXT = re.compile(r"\[SQL:|\[parameters:|Traceback \(most recent call last\)")
_ADDRESSES = re.compile(
    r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"  # URLs
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"  # IPv4 (and port)
    r"|\[[0-9a-fA-F:]*:[0-9a-fA-F:]+\](?::\d+)?"  # [IPv6] (and port)
    r"|\b(?:localhost|(?:[a-zA-Z0-9-]+\.)+[a-zA-Z][a-zA-Z0-9-]*):\d{1,5}\b"  # host:port
)


def redact_internal(text: str) -> tuple[str, bool]:
    """An error text as a tenant may read it: no SQL, parameters or traceback (the whole text
    becomes "internal error"), no URL, address or host:port (each becomes <internal>).
    Answers the text and whether anything was taken out."""
    if _INTERNAL_TEXT.search(text):
        return "internal error", True
    redacted, found = _ADDRESSES.subn("<internal>", text)
    return redacted, found > 0
