"""The AI audit's work: an event judged by the LLM (through the provider and the analyzer's
breaker, like the analysis itself), one event per `evaluation` task, or many in an
`ai_processing` job with progress (abortable between events)."""

from __future__ import annotations

import json
from typing import Any

from app.db.models import Task
from app.edge.uow import read_only
from app.kernel.errors import NotFound
from app.services.audit import evaluations
from app.services.tasks import commands as tasks
from app.services.tasks.commands import Usage
from workers.context import WorkerState
from workers.jobs import log_line, progress_line
from workers.models import guarded
from workers.providers import ProviderError
from workers.usage import chat_usage


async def judge(
    state: WorkerState, task: Task, event_id: int
) -> tuple[evaluations.Verdict, Usage, Any]:
    async with read_only(state.sessionmaker) as session:
        event, decisions = await evaluations.material(session, event_id)
    params: dict[str, Any] = {"temperature": 0.0, "max_tokens": 1024}
    provider = state.provider
    if provider.name == "simulated":
        verdict = evaluations.simulated_verdict(event, decisions)
        params["simulate"] = {"content": json.dumps(verdict)}
    model = state.settings.analyzer_model
    chat = await guarded(
        state.models.breakers,
        state.settings.analyzer_name,
        lambda: provider.chat(
            messages=evaluations.judge_messages(event, decisions),
            model=model,
            params=params,
            attempt=task.attempts,
        ),
    )
    try:
        found = evaluations.parse_verdict(chat.content, decisions)
    except evaluations.UnreadableVerdict as exc:
        raise ProviderError(str(exc), retryable=True) from None
    usage = chat_usage(state, chat)
    return found, usage, event


async def evaluation(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    """The verdict is the task's result; the unit of work that completes the task stores it
    as the event's evaluation (app.services.audit.evaluations.react)."""
    verdict, usage, event = await judge(state, task, int(task.input["event_id"]))
    return {
        "event_id": event.id,
        "judge_model": usage.model,
        "quality_scores": verdict.quality_scores,
        "model_contributions": verdict.model_contributions,
        "prompt_suggestions": verdict.prompt_suggestions,
    }, usage


async def ai_processing(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    """Each event's verdict is stored with the tokens it cost (on the job's task) as it is
    made: a retry or a resume skips the events an earlier attempt already judged, and what an
    attempt spent is counted even when it times out."""
    ids = [int(i) for i in task.input.get("event_ids") or []]
    async with read_only(state.sessionmaker) as session:
        done_before = await evaluations.evaluated_since(session, ids, task.created_at)
    missing: list[int] = []
    todo = [i for i in ids if i not in done_before]
    if done_before:
        await log_line(
            state, task, f"{len(done_before)} event(s) judged by an earlier attempt: skipped"
        )
    await log_line(state, task, f"evaluating {len(todo)} event(s)")
    for event_id in todo:
        try:
            verdict, usage, event = await judge(state, task, event_id)
        except NotFound:
            missing.append(event_id)
            continue
        async with state.unit_of_work() as session:
            await evaluations.store(
                session,
                event=event,
                verdict=verdict,
                judge_model=str(usage.model),
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                latency_ms=usage.latency_ms,
            )
            await tasks.add_usage(
                session=session, task_id=task.id, worker_name=state.name, usage=usage
            )
        done_before.add(event_id)
        n = len(done_before) + len(missing)
        await progress_line(
            state, task, round(n / len(ids) * 100, 1), f"{n} of {len(ids)} evaluated"
        )
    # tokens and cost were counted event by event
    return {"evaluated": len(done_before), "missing": missing}, Usage(
        provider=state.provider.name, model=state.settings.analyzer_model
    )
