"""The OpenAI-compatible HTTP provider (OpenAI, vLLM, Ollama, llama.cpp server, NIM): chat
completions and embeddings, tokens from `usage`, errors classified retryable or not."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from workers.providers.base import ChatResult, EmbeddingResult, ProviderError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
PASSTHROUGH = ("temperature", "max_tokens", "top_p", "stop", "seed", "response_format")


RETRY_AFTER_MAX = 3600.0  # a provider's Retry-After beyond an hour is taken as an hour


def retry_after(value: str | None) -> float | None:
    """A Retry-After header's seconds (a number, or an HTTP date), at most an hour; None when
    absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        chat_model: str,
        embedding_model: str,
        timeout: float,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout
        )
        self.chat_model = chat_model
        self.embedding_model = embedding_model

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        try:
            response = await self.client.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise ProviderError(f"provider timed out: {exc!r}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"provider unreachable: {exc!r}", retryable=True) from exc
        latency = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            raise ProviderError(
                f"provider answered {response.status_code}: {response.text[:300]}",
                retryable=response.status_code in RETRYABLE_STATUS,
                status=response.status_code,
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError("provider answered non-JSON", retryable=True) from exc
        if not isinstance(data, dict):
            raise ProviderError("provider answered an unexpected shape", retryable=False)
        return data, latency

    async def chat(
        self,
        *,
        messages: list[dict[str, Any]],
        model: str | None,
        params: dict[str, Any],
        attempt: int,
    ) -> ChatResult:
        body: dict[str, Any] = {"model": model or self.chat_model, "messages": messages}
        body.update({k: params[k] for k in PASSTHROUGH if k in params})
        data, latency = await self._post("chat/completions", body)
        try:
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError("provider answer has no choices", retryable=False) from exc
        usage = data.get("usage") or {}
        return ChatResult(
            content=content,
            model=str(data.get("model") or body["model"]),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=round(latency, 3),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    async def embed(
        self, *, inputs: list[str], model: str | None, params: dict[str, Any], attempt: int
    ) -> EmbeddingResult:
        body = {"model": model or self.embedding_model, "input": inputs}
        data, latency = await self._post("embeddings", body)
        try:
            vectors = [list(map(float, d["embedding"])) for d in data["data"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("provider answer has no embeddings", retryable=False) from exc
        usage = data.get("usage") or {}
        return EmbeddingResult(
            embeddings=vectors,
            model=str(data.get("model") or body["model"]),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            latency_ms=round(latency, 3),
        )

    async def aclose(self) -> None:
        await self.client.aclose()
