"""A local HTTP server in the test process: a webhook receiver or a fake model service.

`Receiver` is the one most tests want: every request to its path is recorded (`received`) and
answered by `reply` (200 `{"ok": true}` unless told otherwise). `LocalServer` serves any
Starlette app."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from app.platform.embedded import free_port
from tests.waiting import wait_for


def chat_reply(model: str, answer: Any, *, prompt_tokens: int, completion_tokens: int) -> Any:
    """A chat-completions answer as the OpenAI API writes it (a local fake LLM's reply)."""
    return JSONResponse(
        {
            "model": model,
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"content": json.dumps(answer)}}
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        }
    )


class LocalServer:
    """`app` on 127.0.0.1 (a free port unless given); started and stopped with `async with`,
    or `start()` and `stop()` again and again on the same port."""

    def __init__(self, app: ASGIApp, *, port: int = 0) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[Any] = []
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        server = self.server = uvicorn.Server(config)
        task = self._task = asyncio.create_task(server.serve())
        await wait_for(
            lambda: server.started or task.done(),
            every=0.01,
            timeout=10,
            what=f"{self.url} to listen",
        )
        assert server.started, f"{self.url} did not start (is the port taken?)"

    async def stop(self) -> None:
        if self.server is not None and self._task is not None:
            self.server.should_exit = True
            await self._task
        self.server = self._task = None

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class Received:
    """One request as a `Receiver` got it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[[Received], Awaitable[Response] | Response]


class Receiver(LocalServer):
    """Records every request to `path` (a Starlette path, `/{rest:path}` for any) in `received`,
    in order of arrival, and answers it with `reply(request)`, 200 `{"ok": true}` by default.
    `hook_url` is where to send them when `path` is a plain path."""

    def __init__(
        self,
        path: str = "/hook",
        *,
        reply: Reply | None = None,
        methods: Sequence[str] = ("POST",),
        port: int = 0,
    ) -> None:
        async def record(request: Request) -> Response:
            got = Received(
                request.method, request.url.path, dict(request.headers), await request.body()
            )
            self.received.append(got)
            if reply is None:
                return JSONResponse({"ok": True})
            answer = reply(got)
            return await answer if inspect.isawaitable(answer) else answer

        super().__init__(Starlette(routes=[Route(path, record, methods=list(methods))]), port=port)
        self.received: list[Received] = []
        self.hook_url = self.url + path

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def wait(self, count: int = 1, *, timeout: float = 20) -> list[Received]:
        """The requests received, once there are at least `count` of them."""
        return await wait_for(
            lambda: list(self.received),
            until=lambda got: len(got) >= count,
            what=f"{count} request(s) at {self.hook_url}",
            timeout=timeout,
        )


class SlowProvider(Receiver):
    """An OpenAI-compatible chat endpoint (`url + "/v1"`) that holds every call `hold` seconds
    before it echoes the prompt, so calls overlap; it counts the calls it serves at once, in
    all and per class (a prompt starting "high" is of class high, any other low): `now`, and
    the most ever, `peak`."""

    def __init__(self, hold: float = 0.6) -> None:
        super().__init__("/v1/chat/completions", reply=self.answer)
        self.hold = hold
        self.now = {"all": 0, "low": 0, "high": 0}
        self.peak = {"all": 0, "low": 0, "high": 0}

    async def __aenter__(self) -> SlowProvider:
        await self.start()
        return self

    async def answer(self, request: Received) -> Response:
        body = request.json()
        prompt = body["messages"][-1]["content"]
        kinds = ("all", "high" if prompt.startswith("high") else "low")
        for k in kinds:
            self.now[k] += 1
            self.peak[k] = max(self.peak[k], self.now[k])
        try:
            await asyncio.sleep(self.hold)  # the call takes a while: that is what it is for
        finally:
            for k in kinds:
                self.now[k] -= 1
        return JSONResponse(
            {
                "model": body["model"],
                "choices": [{"finish_reason": "stop", "message": {"content": prompt}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2},
            }
        )
