"""The simulated provider: deterministic output and token counts, configurable latency and
failures (per task through config.simulate), for development, tests and load tests."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from workers.providers.base import ChatResult, EmbeddingResult, ProviderError


def simulated_failure(simulate: dict[str, Any], attempt: int) -> bool:
    """Fail the first `fail_attempts` attempts, or every attempt before `fail_until` (epoch s)."""
    if attempt <= int(simulate.get("fail_attempts", 0)):
        return True
    return time.time() < float(simulate.get("fail_until", 0))


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


class SimulatedProvider:
    name = "simulated"

    def __init__(self, *, default_latency_ms: int = 50) -> None:
        self.default_latency_ms = default_latency_ms

    async def _behave(self, simulate: dict[str, Any], attempt: int) -> float:
        started = time.perf_counter()
        latency = float(simulate.get("latency_ms", self.default_latency_ms))
        if latency > 0:
            await asyncio.sleep(latency / 1000)
        if simulated_failure(simulate, attempt):
            fatal = simulate.get("error", "retryable") == "fatal"
            raise ProviderError(
                f"simulated {'fatal' if fatal else 'retryable'} failure on attempt {attempt}",
                retryable=not fatal,
                status=400 if fatal else 503,
            )
        return (time.perf_counter() - started) * 1000

    async def chat(
        self,
        *,
        messages: list[dict[str, Any]],
        model: str | None,
        params: dict[str, Any],
        attempt: int,
    ) -> ChatResult:
        simulate = params.get("simulate") or {}
        latency = await self._behave(simulate, attempt)
        prompt = " ".join(str(m.get("content", "")) for m in messages)
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        # a caller that knows what the answer should say (the simulated risk analyzer) sets it
        content = str(simulate.get("content") or f"[simulated] {digest}: {prompt[:200]}")
        return ChatResult(
            content=content,
            model=model or "simulated-chat",
            input_tokens=int(simulate.get("input_tokens", _count_tokens(prompt))),
            output_tokens=int(simulate.get("output_tokens", _count_tokens(content))),
            latency_ms=round(latency, 3),
        )

    async def embed(
        self, *, inputs: list[str], model: str | None, params: dict[str, Any], attempt: int
    ) -> EmbeddingResult:
        simulate = params.get("simulate") or {}
        latency = await self._behave(simulate, attempt)
        vectors = []
        for text in inputs:
            digest = hashlib.sha256(text.encode()).digest()
            vectors.append([round(b / 255.0, 4) for b in digest[:8]])
        return EmbeddingResult(
            embeddings=vectors,
            model=model or "simulated-embedding",
            input_tokens=int(simulate.get("input_tokens", sum(_count_tokens(t) for t in inputs))),
            latency_ms=round(latency, 3),
        )

    async def aclose(self) -> None:
        return None
