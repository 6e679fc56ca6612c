"""What a task handler receives: the running task and what it may do (opsgraph's public API).

opsgraph's worker gives each attempt an implementation of this class; a handler only uses the
members below, which stay stable across releases."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

__all__ = ["LLM", "TaskContext"]


class LLM(abc.ABC):
    """The installation's LLM provider, called through its priority semaphore: each call waits
    for a slot like an `llm` task, and its tokens and cost are counted on the calling task."""

    @abc.abstractmethod
    async def chat(
        self, messages: Sequence[Mapping[str, Any]], model: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """A chat completion: {"content", "model", "finish_reason", "input_tokens",
        "output_tokens"}. `params` go to the provider (temperature, max_tokens, ...)."""

    @abc.abstractmethod
    async def embed(
        self, inputs: str | Sequence[str], model: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """Embeddings of one text or several: {"embeddings", "model", "input_tokens"}."""


class TaskContext(abc.ABC):
    """The task an attempt runs, and the ways a handler reports and composes work."""

    task_id: str
    #: 1 on the first attempt, 2 on the first retry, ...
    attempt: int
    #: the submitter's tenant (None for an installation-wide submitter)
    tenant_id: str | None
    llm: LLM

    @property
    @abc.abstractmethod
    def cancelled(self) -> bool:
        """True once a cancel of this task is requested. A handler that sees it should stop
        soon: after the installation's grace period the attempt is aborted anyway."""

    @abc.abstractmethod
    async def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100) and an optional message, shown live on the task."""

    @abc.abstractmethod
    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """A line in the task's logs (levels: debug, info, warning, error), with optional
        JSON fields. Lines are written in order, at the latest when the attempt ends."""

    @property
    @abc.abstractmethod
    def folder(self) -> Path:
        """A folder for this task's files, under the installation's data folder (created on
        first use; the same for every attempt of the task)."""

    @abc.abstractmethod
    def request(self, provider: str, endpoint: str, **fields: Any) -> None:
        """Record a call this handler made to an external service (the task's
        `service_requests`, as seed 001 shows them), e.g. `ctx.request("imagegen",
        "/v1/images", status=200, latency_ms=812)`. Recorded when the attempt ends."""

    @abc.abstractmethod
    async def media(
        self,
        kind: Literal["inputs", "outputs"],
        name: str,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        media_type: str = "image",
    ) -> None:
        """Declare one of the task's media (seed 001's `/tasks/{id}/media`): a file under
        `folder` (`path`: served by the API for preview) or an outside `url`."""

    @abc.abstractmethod
    async def submit(self, task_type: str, input: Mapping[str, Any], **options: Any) -> str:
        """Submit a child task (linked to this one as its parent) and return its id. Options:
        queue, priority, max_retries, metadata, config, run_at (an aware datetime) or
        delay_seconds (it runs later), idempotency_key (the same key with the same request,
        within the tenant and OPSGRAPH_IDEMPOTENCY_TTL, answers the task it made: a retried
        handler submits its children once), concurrency_key with concurrency_limit (at most
        that many tasks of the key run at once)."""

    @abc.abstractmethod
    async def wait(self, ids: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Wait for tasks to finish and return their results in the order given; raises
        FatalError on the first that failed or was cancelled."""
