"""A local HTTP server in the test process: a webhook receiver or a fake OpenAI endpoint."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from app.platform.embedded import free_port


def chat_reply(model: str, answer: Any, *, prompt_tokens: int, completion_tokens: int) -> Any:
    """A chat-completions answer as the OpenAI API writes it (a local fake LLM's reply)."""
    from starlette.responses import JSONResponse

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
    def __init__(self, app: ASGIApp, *, port: int = 0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[Any] = []
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LocalServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
