"""One-time sign-in codes for the console: `opsgraph dev` prints `/console#code=<code>` instead
of a token, so the browser's history and the address bar never hold a credential (the code,
once used or expired, is worth nothing). The code maps to the token in Redis, which every API
process shares; the console exchanges it with `POST /console/session`. GETDEL makes the
exchange single-use even when two processes receive the same code at once."""

from __future__ import annotations

import hashlib
import secrets

import redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

PREFIX = "opsgraph:console:code:"
# longer than any code `mint` makes, shorter than anything worth reading from a client
MAX_CODE_CHARS = 128


def code_key(code: str) -> str:
    # the key holds a digest, not the code: a listing of Redis keys signs nobody in
    return PREFIX + hashlib.sha256(code.encode()).hexdigest()


def mint(client: redis.Redis, token: str, ttl_seconds: float) -> str:
    """Store `token` under a fresh code usable once within `ttl_seconds`; answer the code.
    Synchronous: the CLI calls it (see app/cli/dev.py cmd_dev), as do tests."""
    code = secrets.token_urlsafe(32)
    client.set(code_key(code), token, px=max(1, int(ttl_seconds * 1000)))
    return code


def _refused(status: int, code: str, detail: str) -> Response:
    return JSONResponse(
        {"detail": detail, "code": code}, status_code=status, headers={"Cache-Control": "no-store"}
    )


async def exchange(request: Request) -> Response:
    """POST /console/session {"code": "..."} → {"token": "..."}; 400 for a code that is
    unknown, used or expired (they are told apart to nobody)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_CHARS:
        return _refused(400, "bad_request", 'send {"code": "<the code from the sign-in link>"}')
    token = await request.scope["state"]["app"].redis.getdel(code_key(code))
    if token is None:
        return _refused(400, "invalid_code", "this sign-in code is unknown, used or expired")
    # a credential in a response: no cache may keep it
    return JSONResponse(
        {"token": token.decode() if isinstance(token, bytes) else token},
        headers={"Cache-Control": "no-store"},
    )
