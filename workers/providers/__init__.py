"""LLM providers behind one interface: the OpenAI-compatible HTTP provider and the simulated one."""

from workers.providers.base import ChatResult, EmbeddingResult, Provider, ProviderError

__all__ = ["ChatResult", "EmbeddingResult", "Provider", "ProviderError"]
