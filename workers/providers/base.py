"""The provider interface and its error classification (retryable or not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        # seconds the provider asked to wait (its Retry-After), when it said
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        """The provider refused for its rate limit (429): no call was served."""
        return self.status == 429


@dataclass
class ChatResult:
    content: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    finish_reason: str = "stop"
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class EmbeddingResult:
    embeddings: list[list[float]]
    model: str
    input_tokens: int
    latency_ms: float


class Provider(Protocol):
    name: str

    async def chat(
        self,
        *,
        messages: list[dict[str, Any]],
        model: str | None,
        params: dict[str, Any],
        attempt: int,
    ) -> ChatResult: ...

    async def embed(
        self, *, inputs: list[str], model: str | None, params: dict[str, Any], attempt: int
    ) -> EmbeddingResult: ...

    async def aclose(self) -> None: ...
