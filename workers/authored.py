"""Running a task type written with the author's API (`opsgraph.task`): the TaskContext its
handler gets, and how what the handler returns or raises becomes the attempt's outcome.

The handler is the user's own code: its exceptions keep their message in the task's errors
and their traceback in the task's logs. Errors from opsgraph's own parts that it calls through
the context (the database, Redis) stay what the runner makes of any internal error: a safe
message with a ref to the worker's log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

import opsgraph
from app.db.base import utcnow
from app.db.models import Task
from app.services.llm import semaphore
from app.services.llm.pricing import cost_usd
from app.services.tasks import commands as tasks
from app.services.tasks import queries as task_queries
from app.services.tasks import submissions as task_submissions
from app.services.tasks.commands import Usage
from app.services.tasks.lifecycle import TaskStatus
from app.services.tasks.specs import TaskSpec
from opsgraph.definitions import TaskType
from workers.context import WorkerState

log = logging.getLogger(__name__)

LEVELS = ("debug", "info", "warning", "error")
# a handler's log lines kept per attempt (beyond: one line says how many were dropped)
MAX_LOG_LINES = 1000
MAX_LOG_FIELDS_BYTES = 16_384
MAX_ERROR_CHARS = 2000
# service requests a handler records per attempt (ctx.request)
MAX_REQUESTS = 50
TASK_FILES = task_queries.TASK_FILES
SUBMIT_OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "max_retries",
        "metadata",
        "config",
        "run_at",
        "delay_seconds",
        "idempotency_key",
        "concurrency_key",
        "concurrency_limit",
    }
)
# opsgraph's own parts: their errors reach the task as the runner's safe message
INTERNAL_MODULES = ("app.", "workers.", "sqlalchemy", "asyncpg", "redis", "arq")


class HandlerFailed(Exception):
    """How an authored handler's attempt ended when it did not return a result."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, usage: Usage
    ) -> None:
        super().__init__(message)
        self.message = message[:MAX_ERROR_CHARS]
        self.retryable = retryable
        self.retry_after = retry_after
        self.usage = usage


@dataclass
class _Spent:
    """What the handler's LLM calls cost, recorded on the task as an `llm` task's call is."""

    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    calls: int = 0

    def usage(self, requests: Sequence[dict[str, Any]] = ()) -> Usage:
        if not self.calls:
            return Usage(more_requests=tuple(requests))
        return Usage(
            more_requests=tuple(requests),
            provider=self.provider,
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=round(self.cost_usd, 8),
            latency_ms=round(self.latency_ms, 2),
            service_request={
                "provider": self.provider,
                "endpoint": "llm",
                "model": self.model,
                "calls": self.calls,
                "latency_ms": round(self.latency_ms, 2),
            },
        )


class WorkerLLM(opsgraph.LLM):
    def __init__(self, ctx: WorkerTaskContext) -> None:
        self._ctx = ctx

    async def chat(
        self, messages: Sequence[Mapping[str, Any]], model: str | None = None, **params: Any
    ) -> dict[str, Any]:
        ctx, state = self._ctx, self._ctx.state
        async with self._slot():
            chat = await state.provider.chat(
                messages=[dict(m) for m in messages],
                model=model,
                params=params,
                attempt=ctx.attempt,
            )
        ctx.spent_on(chat.model, chat.input_tokens, chat.output_tokens, chat.latency_ms)
        return {
            "content": chat.content,
            "model": chat.model,
            "finish_reason": chat.finish_reason,
            "input_tokens": chat.input_tokens,
            "output_tokens": chat.output_tokens,
        }

    async def embed(
        self, inputs: str | Sequence[str], model: str | None = None, **params: Any
    ) -> dict[str, Any]:
        ctx, state = self._ctx, self._ctx.state
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in inputs]
        async with self._slot():
            emb = await state.provider.embed(
                inputs=texts, model=model, params=params, attempt=ctx.attempt
            )
        ctx.spent_on(emb.model, emb.input_tokens, 0, emb.latency_ms)
        return {"embeddings": emb.embeddings, "model": emb.model, "input_tokens": emb.input_tokens}

    def _slot(self) -> AbstractAsyncContextManager[float]:
        """One slot of the LLM semaphore per call, at the task's priority, as an `llm` task
        holds one for its call."""
        ctx, settings = self._ctx, self._ctx.state.settings
        return semaphore.slot(
            ctx.state.redis,
            settings.semaphore,
            priority=ctx.priority,
            name=ctx.task_id,
            max_wait=settings.llm_slot_wait_max_seconds,
            calls=ctx.state.llm_slots,
        )


class WorkerTaskContext(opsgraph.TaskContext):
    def __init__(self, state: WorkerState, task: Task) -> None:
        self.state = state
        self.task_id = str(task.id)
        self.attempt = task.attempts
        self.tenant_id = task.origin_tenant_id
        self.priority = task.priority
        self.llm = WorkerLLM(self)
        self._cancelled = False
        self._lines: list[tuple[datetime, str, str, dict[str, Any] | None]] = []
        self._dropped = 0
        self._spent = _Spent()
        self._requests: list[dict[str, Any]] = []

    # -- what the handler uses ------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    async def progress(self, percent: float, message: str | None = None) -> None:
        if not isinstance(percent, int | float) or isinstance(percent, bool):
            raise TypeError("percent must be a number (0-100)")
        await self.flush()
        async with self.state.unit_of_work() as session:
            await tasks.set_progress(
                session=session,
                task_id=uuid.UUID(self.task_id),
                worker_name=self.state.name,
                progress=float(percent),
                message=None if message is None else str(message)[:500],
            )

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        if len(self._lines) >= MAX_LOG_LINES:
            self._dropped += 1
            return
        kept = _json_fields(fields) if fields else None
        self._lines.append((utcnow(), level, str(message), kept))

    @property
    def folder(self) -> Path:
        path = self.state.settings.data_dir.resolve() / TASK_FILES / self.task_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def request(self, provider: str, endpoint: str, **fields: Any) -> None:
        if len(self._requests) >= MAX_REQUESTS:
            return
        entry = {"provider": str(provider)[:255], "endpoint": str(endpoint)[:2048]}
        self._requests.append({**_json_fields(fields), **entry, "at": utcnow().isoformat()})

    async def media(
        self,
        kind: Literal["inputs", "outputs"],
        name: str,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        media_type: str = "image",
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give a path (a file under ctx.folder) or a url")
        item = {"name": str(name)[:255], "media_type": str(media_type)[:64]}
        if path is not None:
            item["path"] = _stored(path, self.folder, self.state.settings.data_dir)
            item["url"] = f"/api/v1/monitoring/tasks/{self.task_id}/media/{item['name']}"
        else:
            item["path"] = ""
            item["url"] = str(url)[:2048]
        async with self.state.unit_of_work() as session:
            await tasks.add_media(
                session=session,
                task_id=uuid.UUID(self.task_id),
                worker_name=self.state.name,
                kind=kind,
                item=item,
            )

    async def submit(self, task_type: str, input: Mapping[str, Any], **options: Any) -> str:
        unknown = set(options) - SUBMIT_OPTIONS
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)}; known: {', '.join(sorted(SUBMIT_OPTIONS))}"
            )
        spec = TaskSpec(
            task_type=task_type,
            input=dict(input),
            queue=options.get("queue"),
            priority=options.get("priority", self.priority),
            max_retries=options.get("max_retries"),
            metadata=dict(options.get("metadata") or {}),
            config=dict(options.get("config") or {}),
            origin_instance="task",
            origin_tenant_id=self.tenant_id,
            origin_reference=self.task_id,
            parent_id=uuid.UUID(self.task_id),
            run_at=options.get("run_at"),
            delay_seconds=options.get("delay_seconds"),
            idempotency_key=options.get("idempotency_key"),
            concurrency_key=options.get("concurrency_key"),
            concurrency_limit=options.get("concurrency_limit"),
        )
        async with self.state.unit_of_work() as session:
            child = await task_submissions.submit_task(
                session=session, spec=spec, defaults=self.state.settings.task_defaults
            )
        return str(child.id)

    async def wait(self, ids: Sequence[str], timeout: float | None = None) -> list[Any]:
        wanted = [uuid.UUID(str(i)) for i in ids]
        if not wanted:
            return []
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.05
        # PostgreSQL holds the truth: read the children's rows until all are finished (the
        # pause grows to a second, so a long wait costs one small query a second)
        while True:
            async with self.state.sessionmaker() as session:
                rows = {
                    r.id: r
                    for r in (
                        await session.execute(
                            select(Task.id, Task.status, Task.result, Task.errors).where(
                                Task.id.in_(wanted)
                            )
                        )
                    ).all()
                }
            for task_id in wanted:
                row = rows.get(task_id)
                if row is None:
                    raise opsgraph.FatalError(f"task {task_id} does not exist")
                if row.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
                    last = row.errors[-1] if row.errors else row.status.lower()
                    raise opsgraph.FatalError(f"task {task_id} {row.status}: {last}")
            if all(rows[t].status == TaskStatus.COMPLETED for t in wanted):
                return [rows[t].result for t in wanted]
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"tasks not finished within {timeout}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    # -- what the worker uses -------------------------------------------------------------

    def cancel_requested(self) -> None:
        self._cancelled = True

    def spent_on(self, model: str, tokens_in: int, tokens_out: int, latency_ms: float) -> None:
        s = self._spent
        s.provider = self.state.provider.name
        s.model = model
        s.input_tokens += tokens_in
        s.output_tokens += tokens_out
        s.cost_usd += cost_usd(self.state.settings.prices, model, tokens_in, tokens_out)
        s.latency_ms += latency_ms
        s.calls += 1

    def usage(self) -> Usage:
        return self._spent.usage(self._requests)

    async def flush(self) -> None:
        """Write the log lines so far (in order) in one unit of work."""
        lines, self._lines = self._lines, []
        if self._dropped:
            lines.append((utcnow(), "warning", f"{self._dropped} log line(s) dropped", None))
            self._dropped = 0
        if not lines:
            return
        async with self.state.unit_of_work() as session:
            for at, level, message, fields in lines:
                await tasks.append_log(
                    session=session,
                    task_id=uuid.UUID(self.task_id),
                    message=message,
                    level=level,
                    fields=fields,
                    at=at,
                )


def _json_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A line's fields as JSON (what is not JSON becomes its text), bounded."""
    raw = json.dumps(fields, default=str)
    if len(raw) > MAX_LOG_FIELDS_BYTES:
        return {"truncated": raw[:MAX_LOG_FIELDS_BYTES]}
    loaded: dict[str, Any] = json.loads(raw)
    return loaded


def _stored(path: str | Path, folder: Path, data_dir: Path) -> str:
    """A media file's path as stored: relative to the data folder, and only under the
    task's own folder (the API serves it from there)."""
    file = Path(path).resolve()
    if not file.is_relative_to(folder) or not file.is_file():
        raise ValueError(f"{path} is not a file under ctx.folder ({folder})")
    return str(file.relative_to(data_dir.resolve()))


def _internal(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(INTERNAL_MODULES)


def _parse(definition: TaskType, data: dict[str, Any]) -> Any:
    if definition.input is None:
        return data
    return definition.input.model_validate(data)


def result_json(result: Any, limit: int) -> Any:
    """The result as stored: JSON, at most `limit` bytes, or a fatal failure."""
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    try:
        raw = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise opsgraph.FatalError(f"the result is not JSON: {exc}") from None
    size = len(raw.encode())
    if size > limit:
        raise opsgraph.FatalError(
            f"the result is {size} bytes; the limit is {limit} (OPSGRAPH_MAX_RESULT_BYTES)"
        )
    return json.loads(raw)


async def run(definition: TaskType, task: Task, state: WorkerState) -> tuple[Any, Usage]:
    """One attempt of an authored task type: its handler called with a TaskContext."""
    ctx = WorkerTaskContext(state, task)
    state.contexts[ctx.task_id] = ctx
    try:
        try:
            args = _parse(definition, task.input)
        except ValidationError as exc:
            # the worker's code disagrees with what the API accepted (a rolling deploy):
            # running it again would fail the same way
            first = exc.errors()[0]
            where = ".".join(["input", *(str(p) for p in first["loc"])])
            raise opsgraph.FatalError(f"{where}: {first['msg']}") from None
        if definition.is_async:
            result = await definition.handler(ctx, args)
        else:
            result = await asyncio.to_thread(definition.handler, ctx, args)
        return result_json(result, state.settings.max_result_bytes), ctx.usage()
    except opsgraph.FatalError as exc:
        raise HandlerFailed(_text(exc), retryable=False, usage=ctx.usage()) from exc
    except opsgraph.RetryableError as exc:
        raise HandlerFailed(
            _text(exc), retryable=True, retry_after=exc.retry_after, usage=ctx.usage()
        ) from exc
    except Exception as exc:
        if _internal(exc) or isinstance(exc, TimeoutError):
            raise  # the runner's own handling: a safe message, or the attempt's timeout
        ctx.log(
            f"handler raised {type(exc).__name__}",
            level="error",
            traceback="".join(traceback.format_exception(exc))[-8000:],
        )
        raise HandlerFailed(_text(exc), retryable=True, usage=ctx.usage()) from exc
    finally:
        state.contexts.pop(ctx.task_id, None)
        with suppress(Exception):
            await asyncio.shield(ctx.flush())


def _text(exc: BaseException) -> str:
    message = str(exc)
    name = type(exc).__name__
    if isinstance(exc, opsgraph.FatalError | opsgraph.RetryableError):
        return message or name
    return f"{name}: {message}" if message else name
