"""What a chat call cost, as the task lifecycle records it (tokens, price, latency, and the
request for the task's service log)."""

from __future__ import annotations

from app.services.llm.pricing import cost_usd
from app.services.tasks.commands import Usage
from workers.context import WorkerState
from workers.providers.base import ChatResult


def chat_usage(state: WorkerState, chat: ChatResult, *, logged: bool = True) -> Usage:
    provider = state.provider.name
    return Usage(
        provider=provider,
        model=chat.model,
        input_tokens=chat.input_tokens,
        output_tokens=chat.output_tokens,
        cost_usd=cost_usd(state.settings.prices, chat.model, chat.input_tokens, chat.output_tokens),
        latency_ms=chat.latency_ms,
        service_request={
            "provider": provider,
            "endpoint": "chat/completions",
            "model": chat.model,
            "latency_ms": chat.latency_ms,
        }
        if logged
        else None,
    )
