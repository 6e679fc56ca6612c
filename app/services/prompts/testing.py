"""Prompt tests: an event's inputs analysed with a prompt configuration, through the same
path as production (a task on the analysis queue, the LLM semaphore, the provider and its
breaker) but changing nothing stored: no event, no prompt. A test is a task of the system
type `prompt_test`; its result is the assessment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Task
from app.kernel.errors import InvalidInput
from app.services.pipeline import queries
from app.services.pipeline.config import config_of
from app.services.prompts.versions import PromptConfig, check_config, require_current
from app.services.tasks import submissions as task_submissions
from app.services.tasks.specs import TaskSpec


@dataclass(frozen=True)
class TestRun:
    label: str  # current | modified | custom
    config: PromptConfig
    version: int | None


async def start(
    *,
    session: AsyncSession,
    model: str,
    event_id: int,
    candidates: list[TestRun],
    actor: str,
) -> list[Task]:
    """One task per configuration to try on the event's batch."""
    config = config_of(session)
    if model != config.analyzer:
        raise InvalidInput(
            f"prompt tests run the analyzer: model must be {config.analyzer!r}", field="model"
        )
    event = await queries.get_event(session=session, event_id=event_id)
    for run in candidates:
        check_config(run.config, "config")
    return [
        await task_submissions.submit_task(
            session=session,
            spec=TaskSpec(
                task_type="prompt_test",
                queue=config.analysis_queue,
                priority=90,  # someone is waiting for it
                input={
                    "event_id": event.id,
                    "batch_id": event.batch_id,
                    "label": run.label,
                    "prompt_version": run.version,
                    "system_prompt": run.config.system_prompt,
                },
                config={
                    "temperature": run.config.temperature,
                    "max_tokens": run.config.max_tokens,
                },
                metadata={"requested_by": actor, "model": model},
                origin_instance="prompt-test",
                max_retries=1,
                system=True,
            ),
            defaults=config.task_defaults,
        )
        for run in candidates
    ]


async def current_and_candidate(
    session: AsyncSession, model: str, candidate: PromptConfig
) -> list[TestRun]:
    now = await require_current(session, model)
    return [
        TestRun(
            "current", PromptConfig(now.system_prompt, now.temperature, now.max_tokens), now.version
        ),
        TestRun("modified", candidate, None),
    ]


def outcome(task: Task) -> dict[str, Any] | None:
    """A finished test's assessment, or None (still running, failed)."""
    if task.status != "COMPLETED" or not isinstance(task.result, dict):
        return None
    return dict(task.result)
