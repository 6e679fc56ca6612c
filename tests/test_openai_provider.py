"""The OpenAI-compatible provider against a tiny local server that speaks the OpenAI API:
tokens from `usage`, 5xx and timeouts retried then failed with the error kept, 4xx fatal.
The API keeps answering throughout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response

from tests.client import GraphQLClient
from tests.conftest import wait_for_status
from tests.processes import Proc
from tests.receiver import Received, Receiver
from tests.waiting import wait_for


class FakeOpenAI(Receiver):
    """Speaks the OpenAI API (chat completions and embeddings); a prompt names a failure:
    `always-500`, `bad-request` (400), `slow` (3 s, past the worker's timeout: `in_flight`
    counts those being held), `rate-limited-twice` (429 with Retry-After: 1, twice)."""

    def __init__(self) -> None:
        super().__init__("/v1/{operation:path}", reply=self.answer)
        self.in_flight = 0
        self.limited = 0  # 429s answered to `rate-limited-twice`

    async def answer(self, request: Received) -> Response:
        body = request.json()
        if request.path == "/v1/embeddings":
            return JSONResponse(
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                        for i, _ in enumerate(body["input"])
                    ],
                    "usage": {"prompt_tokens": 5, "total_tokens": 5},
                }
            )
        prompt = body["messages"][-1]["content"]
        if prompt == "always-500":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)
        if prompt == "rate-limited-twice" and self.limited < 2:
            self.limited += 1
            return JSONResponse(
                {"error": {"message": "rate limit reached"}},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        if prompt == "bad-request":
            return JSONResponse({"error": {"message": "context too long"}}, status_code=400)
        if prompt == "slow":
            self.in_flight += 1
            try:
                await asyncio.sleep(3)  # a call that hangs past the worker's timeout (the point)
            finally:
                self.in_flight -= 1
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"echo: {prompt}"},
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        )

    def chats(self) -> list[Received]:
        return [r for r in self.received if r.path == "/v1/chat/completions"]


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_worker(spawn_worker: Callable[..., Proc], fake_openai: FakeOpenAI) -> Proc:
    return spawn_worker(
        "worker-openai",
        "openai-q",
        OPSGRAPH_LLM_BASE_URL=fake_openai.url + "/v1",
        OPSGRAPH_LLM_API_KEY="sk-test",
        OPSGRAPH_LLM_TIMEOUT_SECONDS="0.5",
        OPSGRAPH_LLM_CHAT_MODEL="gpt-4o-mini",
    )


def chat(prompt: str) -> dict[str, Any]:
    return {
        "operation": "chat_completion",
        "queue": "openai-q",
        "input": {"prompt": prompt},
        "config": {"temperature": 0.2},
    }


async def test_chat_reads_usage_and_prices_it(
    admin: GraphQLClient, openai_worker: Proc, fake_openai: FakeOpenAI
) -> None:
    data = await admin.data("SubmitTask", input=chat("hello"))
    task = await wait_for_status(admin, data["submitTask"]["task"]["id"], {"COMPLETED"})
    assert task["result"]["content"] == "echo: hello"
    assert (task["inputTokens"], task["outputTokens"]) == (11, 7)
    assert task["provider"] == "openai" and task["model"] == "gpt-4o-mini"
    assert abs(task["costUsd"] - (11 * 0.00015 + 7 * 0.0006) / 1000) < 1e-12
    (call,) = fake_openai.chats()
    assert call.headers["authorization"] == "Bearer sk-test"
    assert call.json()["temperature"] == 0.2

    emb = await admin.data(
        "SubmitTask",
        input={"operation": "generate_embedding", "queue": "openai-q", "input": {"input": "abc"}},
    )
    done = await wait_for_status(admin, emb["submitTask"]["task"]["id"], {"COMPLETED"})
    assert done["result"]["embeddings"] == [[0.1, 0.2, 0.3]] and done["inputTokens"] == 5


@pytest.mark.parametrize(
    ("prompt", "needle"), [("always-500", "answered 500"), ("slow", "timed out")]
)
async def test_retryable_failures_retry_then_fail_with_error_kept(
    admin: GraphQLClient, openai_worker: Proc, fake_openai: FakeOpenAI, prompt: str, needle: str
) -> None:
    data = await admin.data("SubmitTask", input={**chat(prompt), "maxRetries": 2})
    task_id = data["submitTask"]["task"]["id"]
    if prompt == "slow":
        # the API keeps answering while a call hangs at the provider
        await wait_for(lambda: fake_openai.in_flight, every=0.02, timeout=10, what="a call to hang")
        assert (await admin.http.get("/healthz")).status_code == 200
        assert (await admin.data("QueueStats"))["queueStats"]["timestamp"]
        assert fake_openai.in_flight > 0
    task = await wait_for_status(admin, task_id, {"FAILED"}, timeout=30)
    assert task["attempts"] == 3 and task["deadLettered"] is True
    assert all(needle in e for e in task["errors"]), task["errors"]
    # and the provider really saw each of the three attempts
    calls = [c for c in fake_openai.chats() if c.json()["messages"][-1]["content"] == prompt]
    assert len(calls) == 3


async def test_client_errors_are_fatal(admin: GraphQLClient, openai_worker: Proc) -> None:
    data = await admin.data("SubmitTask", input=chat("bad-request"))
    task = await wait_for_status(admin, data["submitTask"]["task"]["id"], {"FAILED"})
    assert task["attempts"] == 1 and "answered 400" in task["errors"][0]


async def test_a_rate_limited_call_waits_its_retry_after_and_spends_no_retry(
    admin: GraphQLClient, openai_worker: Proc, fake_openai: FakeOpenAI
) -> None:
    data = await admin.data("SubmitTask", input={**chat("rate-limited-twice"), "maxRetries": 0})
    task = await wait_for_status(admin, data["submitTask"]["task"]["id"], {"COMPLETED", "FAILED"})
    # no retry was allowed, yet two 429s did not fail it: they spent none
    assert task["status"] == "COMPLETED" and task["result"]["content"] == "echo: rate-limited-twice"
    assert task["attempts"] == 1 and task["retryCount"] == 0 and task["errors"] == []
    steps = [t["toStatus"] for t in task["transitions"]]
    assert steps == ["QUEUED", "RUNNING", "QUEUED", "RUNNING", "QUEUED", "RUNNING", "COMPLETED"]
    # each time it waited the second the provider asked for
    queued = [datetime.fromisoformat(t["at"]) for t in task["transitions"][2:5:2]]
    started = [datetime.fromisoformat(t["at"]) for t in task["transitions"][3:6:2]]
    assert all((s - q).total_seconds() >= 1.0 for q, s in zip(queued, started, strict=True))
    waits = [x["message"] for x in task["logs"] if "rate limited (429)" in x["message"]]
    assert len(waits) == 2 and "again in 1.0 s (no retry spent)" in waits[0]
    assert fake_openai.limited == 2
