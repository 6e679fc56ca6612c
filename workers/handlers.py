"""What each task type does. A handler gets the task and returns (result, usage); it raises
ProviderError for failures the retry policy should see. Handlers are safe to re-run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from app.db.models import Task
from app.services.llm.pricing import cost_usd
from app.services.tasks import commands as tasks
from app.services.tasks import types as task_types
from app.services.tasks.commands import Usage
from opsgraph import definitions
from opsgraph.definitions import TaskType
from workers import audit, authored, jobs
from workers.context import WorkerState
from workers.pipeline import handlers as pipeline
from workers.providers import ProviderError
from workers.providers.simulated import simulated_failure
from workers.usage import chat_usage

Handler = Callable[[Task, WorkerState], Awaitable[tuple[Any, Usage]]]


def _messages(task: Task) -> list[dict[str, Any]]:
    messages = task.input.get("messages")
    if isinstance(messages, list):
        return [m for m in messages if isinstance(m, dict)]
    prompt = str(task.input.get("prompt", ""))
    out: list[dict[str, Any]] = []
    if isinstance(task.input.get("system"), str):
        out.append({"role": "system", "content": task.input["system"]})
    out.append({"role": "user", "content": prompt})
    return out


async def llm(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    params = dict(task.config)
    model = params.get("model") if isinstance(params.get("model"), str) else None
    provider = state.provider
    if task.operation == "generate_embedding":
        raw = task.input.get("input", task.input.get("text"))
        inputs = [raw] if isinstance(raw, str) else [str(x) for x in raw or []]
        emb = await provider.embed(inputs=inputs, model=model, params=params, attempt=task.attempts)
        usage = Usage(
            provider=provider.name,
            model=emb.model,
            input_tokens=emb.input_tokens,
            cost_usd=cost_usd(state.settings.prices, emb.model, emb.input_tokens, 0),
            latency_ms=emb.latency_ms,
            service_request=_request_log(provider.name, "embeddings", emb.model, emb.latency_ms),
        )
        return {"embeddings": emb.embeddings, "model": emb.model}, usage
    chat = await provider.chat(
        messages=_messages(task), model=model, params=params, attempt=task.attempts
    )
    usage = chat_usage(state, chat)
    return {
        "content": chat.content,
        "model": chat.model,
        "finish_reason": chat.finish_reason,
    }, usage


async def echo(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    """Returns its input and config.value after the simulated latency (pipelines, demos)."""
    simulate = task.config.get("simulate") or {}
    latency = float(simulate.get("latency_ms", state.settings.simulated_latency_ms))
    if latency >= 100:
        # Long enough to be watched: report progress halfway.
        await asyncio.sleep(latency / 2000)
        await report_progress(state, task, 50.0, "halfway")
        await asyncio.sleep(latency / 2000)
    elif latency > 0:
        await asyncio.sleep(latency / 1000)
    if simulated_failure(simulate, task.attempts):
        fatal = simulate.get("error", "retryable") == "fatal"
        raise ProviderError(f"simulated failure on attempt {task.attempts}", retryable=not fatal)
    return {"input": task.input, "value": task.config.get("value")}, Usage(
        provider="simulated", latency_ms=latency
    )


async def report_progress(
    state: WorkerState, task: Task, progress: float, message: str | None = None
) -> None:
    async with state.unit_of_work() as session:
        await tasks.set_progress(
            session=session,
            task_id=task.id,
            worker_name=state.name,
            progress=progress,
            message=message,
        )


def _request_log(provider: str, path: str, model: str, latency_ms: float) -> dict[str, Any]:
    return {"provider": provider, "endpoint": path, "model": model, "latency_ms": latency_ms}


BUILTIN: dict[str, tuple[Handler, str]] = {
    "llm": (llm, "A chat completion or embeddings from the installation's LLM provider."),
    "echo": (echo, "Returns its input after the simulated latency (demos, pipelines)."),
    "detection": (pipeline.detection, "The camera pipeline: objects in an image."),
    "enrichment": (pipeline.enrichment, "The camera pipeline: a batch's detections enriched."),
    "analysis": (pipeline.analysis, "The camera pipeline: a batch's LLM risk analysis."),
    "prompt_test": (pipeline.prompt_test, "A risk analysis tried with a prompt configuration."),
    "export": (jobs.export, "A background job: an export file."),
    "cleanup": (jobs.cleanup, "A background job: retention clean-up."),
    "evaluation": (audit.evaluation, "The AI audit: an event judged by the LLM."),
    "ai_processing": (audit.ai_processing, "The AI audit: a batch of evaluations."),
}


def register_builtin() -> None:
    """opsgraph's own types go into the one registry users' types are defined in (again is
    harmless), so the runner finds every handler the same way."""
    for name, (handler, description) in BUILTIN.items():
        if definitions.lookup(name) is not None:
            continue
        operations = task_types.TASK_TYPES.get(name) or task_types.SYSTEM_TYPES[name]
        definitions.register(
            TaskType(
                name=name,
                handler=handler,
                queue=task_types.BUILTIN_QUEUE,
                description=description,
                builtin=True,
                operations=operations,
                module=__name__,
            )
        )


def handler_for(task_type: str) -> Handler | None:
    """The handler of a task type this process serves (None: it has none)."""
    definition = definitions.lookup(task_type)
    if definition is None:
        return None
    if definition.builtin:
        handler: Handler = definition.handler
        return handler
    return partial(authored.run, definition)
