"""The stage handlers: detection (read the image, ask the detector), enrichment (ask the vision
model about the detection) and analysis (ask the LLM for a risk assessment of a batch). Each
returns (result, usage) like every handler; the reactions in app.services.pipeline.stages store
what they found in the transaction that completes the task."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from app.db.models import Task
from app.edge.uow import read_only
from app.services.pipeline import queries, risk
from app.services.prompts import versions
from app.services.tasks.commands import Usage
from workers.context import WorkerState
from workers.models import Picture, guarded, read_picture
from workers.providers import ProviderError
from workers.usage import chat_usage


def _read(file_path: str, root: Path, max_bytes: int) -> bytes:
    path = Path(file_path).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ProviderError(f"{file_path} is outside the camera folders", retryable=False)
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # never more than the limit in memory
    except FileNotFoundError:
        raise ProviderError(
            "File not found: image deleted before processing", retryable=False
        ) from None
    if len(data) > max_bytes:
        raise ProviderError(
            f"Invalid image format: the file is over the {max_bytes}-byte limit", retryable=False
        )
    return data


async def _picture(state: WorkerState, file_path: str) -> Picture:
    settings = state.settings
    data = await asyncio.to_thread(
        _read, file_path, settings.cameras_folder, settings.camera_max_image_bytes
    )
    return await asyncio.to_thread(read_picture, data, max_pixels=settings.camera_max_image_pixels)


def _usage(backend: str, result: dict[str, Any], endpoint: str) -> Usage:
    return Usage(
        provider=backend,
        model=str(result.get("model")),
        latency_ms=result.get("latency_ms"),
        input_tokens=int(result.pop("input_tokens", 0) or 0),
        output_tokens=int(result.pop("output_tokens", 0) or 0),
        service_request={
            "provider": backend,
            "endpoint": endpoint,
            "model": result.get("model"),
            "latency_ms": result.get("latency_ms"),
        },
    )


async def detection(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    given = task.input
    picture = await _picture(state, given["file_path"])
    detector = state.models.detector
    result = await guarded(
        state.models.breakers,
        detector.name,
        lambda: detector.detect(
            picture, camera_id=given["camera_id"], file_name=Path(given["file_path"]).name
        ),
    )
    result.update(width=picture.width, height=picture.height)
    return result, _usage(detector.backend, result, "detect")


async def enrichment(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    given = task.input
    picture = await _picture(state, given["file_path"])
    enricher = state.models.enricher
    result = await guarded(
        state.models.breakers,
        enricher.name,
        lambda: enricher.enrich(picture, detection_type=given.get("detection_type")),
    )
    return result, _usage(enricher.backend, result, "enrich")


def simulated_assessment(
    material: list[dict[str, Any]], *, system_prompt: str, temperature: float
) -> dict[str, Any]:
    """What the simulated analyzer answers: people weigh most, more so when several appear;
    the prompt and temperature move the score as a real model's answer would move (a fixed
    shift of -10..+10 derived from both, so a prompt test of two configurations compares two
    different answers), and the reasoning names the configuration it was given."""
    weights = {"person": 30, "vehicle": 12, "package": 8, "animal": 4}
    score, seen = 0.0, set()
    for d in material:
        for o in d["objects"]:
            score += weights.get(str(o.get("label")), 5) * float(o.get("confidence", 0.5))
            seen.add(str(o.get("label")))
    fingerprint = prompt_fingerprint(system_prompt, temperature)
    shift = int(fingerprint[:2], 16) % 21 - 10
    score = max(0, min(100, round(score) + shift))
    level = risk.level_of(score)
    return {
        "risk_score": score,
        "risk_level": level,
        "summary": f"{len(material)} detection(s): {', '.join(sorted(seen)) or 'nothing'}",
        "reasoning": f"simulated analysis under prompt {fingerprint}: weighted object count"
        f" shifted by {shift} gives {score} ({level})",
    }


def prompt_fingerprint(system_prompt: str, temperature: float) -> str:
    """Eight hex digits naming a (prompt, temperature) configuration."""
    return hashlib.sha256(f"{float(temperature):.3f}|{system_prompt}".encode()).hexdigest()[:8]


async def _assess(
    task: Task, state: WorkerState, batch_id: str, system_prompt: str, params: dict[str, Any]
) -> tuple[dict[str, Any], Usage]:
    """The analyzer's call: the batch's material under this prompt, through the provider and
    the analyzer's breaker (production and prompt tests alike)."""
    async with read_only(state.sessionmaker) as session:
        batch, material = await queries.batch_material(session=session, batch_id=batch_id)
    messages = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": risk.describe_batch(batch.camera_id, material)},
    ]
    provider = state.provider
    if provider.name == "simulated":
        simulate = dict(params.get("simulate") or {})
        assessment = simulated_assessment(
            material,
            system_prompt=system_prompt,
            temperature=float(params.get("temperature", 0.1)),
        )
        simulate.setdefault("content", json.dumps(assessment))
        params["simulate"] = simulate
    model = str(params.get("model") or state.settings.analyzer_model)
    chat = await guarded(
        state.models.breakers,
        state.settings.analyzer_name,
        lambda: provider.chat(messages=messages, model=model, params=params, attempt=task.attempts),
    )
    try:
        found = risk.parse(chat.content)
    except risk.UnreadableAnswer as exc:
        raise ProviderError(str(exc), retryable=True) from None
    usage = chat_usage(state, chat)
    return {
        "batch_id": batch_id,
        "risk_score": found.risk_score,
        "risk_level": found.risk_level,
        "summary": found.summary,
        "reasoning": found.reasoning,
        "model": chat.model,
        "latency_ms": chat.latency_ms,
        "tokens_used": chat.input_tokens + chat.output_tokens,
    }, usage


async def analysis(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    """The analyzer reads its prompt's current version as it runs and records which one."""
    async with read_only(state.sessionmaker) as session:
        prompt = await versions.current(session, state.settings.analyzer_name)
    if prompt is None:  # no stored prompt for this model name: the built-in one
        system_prompt, params, version = (
            risk.SYSTEM_PROMPT,
            {"temperature": 0.1, "max_tokens": 2048},
            None,
        )
    else:
        system_prompt = prompt.system_prompt
        params = {"temperature": prompt.temperature, "max_tokens": prompt.max_tokens}
        version = prompt.version
    result, usage = await _assess(
        task, state, str(task.input["batch_id"]), system_prompt, {**params, **task.config}
    )
    return {**result, "prompt_version": version}, usage


async def prompt_test(task: Task, state: WorkerState) -> tuple[Any, Usage]:
    """One configuration tried on an event's batch; nothing but this task is written."""
    result, usage = await _assess(
        task,
        state,
        str(task.input["batch_id"]),
        str(task.input["system_prompt"]),
        dict(task.config),
    )
    return {
        **result,
        "event_id": task.input["event_id"],
        "label": task.input.get("label"),
        "prompt_version": task.input.get("prompt_version"),
    }, usage
