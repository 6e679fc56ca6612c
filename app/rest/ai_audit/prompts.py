"""Seed 002's prompt configurations over REST: versions, history, restore, export, import,
and prompt tests through the production path. Mutating calls accept the seed's `X-API-Key`
header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt

from app.auth.principals import Permission
from app.db.models import PromptVersion, Task
from app.edge.state import AppState
from app.edge.uow import read_only
from app.kernel.bounds import HISTORY_LIMIT_MAX
from app.rest.ai_audit.common import KNOWN, refuse, waited
from app.rest.deps import PlatformOperator, PlatformReader, State
from app.rest.params import Offset, RowId
from app.rest.refusals import reading, writing
from app.rest.shapes import columns
from app.services.prompts import testing, versions
from app.services.prompts.versions import PromptConfig

router = APIRouter(prefix="/api/ai-audit", tags=["AI Audit"])
Model = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]
PromptText = Annotated[str, Field(min_length=1, max_length=versions.MAX_PROMPT_CHARS)]
Temperature = Annotated[StrictFloat | StrictInt, Field(ge=0, le=2)]
MaxTokens = Annotated[StrictInt, Field(ge=1, le=versions.MAX_TOKENS)]
Description = Annotated[str, Field(max_length=versions.MAX_DESCRIPTION_CHARS)]


def config_out(p: PromptVersion) -> dict[str, Any]:
    return {"model": p.model, **versions.as_config(p), **columns(p, "version", "created_at")}


# --- prompt configurations ------------------------------------------------------------------


class ConfigIn(BaseModel):
    system_prompt: PromptText | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None


class PromptIn(ConfigIn):
    description: Description | None = None


async def _update(state: AppState, model: str, body: PromptIn, author: str) -> tuple[Any, Any]:
    async with writing(state, refuse) as session:
        return await versions.update(
            session=session, model=model, **body.model_dump(), author=author
        )


async def _current(state: AppState, model: str) -> PromptVersion:
    async with reading(state, refuse) as session:
        return await versions.require_current(session, model)


@router.get("/prompt-config/{model}", responses=KNOWN, summary="Get prompt configuration (DB)")
async def get_prompt_config(model: Model, state: State, principal: PlatformReader) -> Any:
    return config_out(await _current(state, model))


@router.put("/prompt-config/{model}", summary="Update prompt configuration (DB)")
async def put_prompt_config(
    model: Model, body: ConfigIn, state: State, principal: PlatformOperator
) -> Any:
    """A new version; fields left out keep the current values."""
    row, _ = await _update(state, model, PromptIn(**body.model_dump()), principal.subject)
    return config_out(row)


@router.get("/prompts", summary="Get all prompt configurations")
async def get_prompts(state: State, principal: PlatformReader) -> Any:
    async with read_only(state.sessionmaker) as session:
        found = await versions.all_current(session)
    return {
        "prompts": {m: {**versions.as_config(p), "version": p.version} for m, p in found.items()}
    }


@router.get("/prompts/export", summary="Export all configurations as JSON")
async def export_prompts(state: State, principal: PlatformReader) -> Any:
    """The seed's export (current configurations) plus, beyond it, `history`: every version,
    so an import into an empty installation rebuilds it."""
    async with read_only(state.sessionmaker) as session:
        return await versions.export(session)


@router.get("/prompts/history", summary="Get history for all models")
async def all_history(
    state: State,
    principal: PlatformReader,
    limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT_MAX, description="Versions per model")] = 10,
) -> Any:
    async with read_only(state.sessionmaker) as session:
        found = await versions.history_all(session=session, limit=limit)
    return {
        "history": {m: [versions.as_version(v) for v in rows] for m, rows in found.items()},
        "limit": limit,
    }


# Seed 002 reads a model's history with GET /prompts/history/{model} and restores a version
# with POST /prompts/history/{version}: one path, whose segment is a model name for GET and a
# version number for POST (OpenAPI allows one template per path).
HistoryRef = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]


@router.get(
    "/prompts/history/{ref}",
    responses=KNOWN,
    summary="Get history for a model (`ref`: the model name)",
)
async def model_history(
    ref: HistoryRef,
    state: State,
    principal: PlatformReader,
    limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT_MAX)] = 50,
    offset: Offset = 0,
) -> Any:
    async with read_only(state.sessionmaker) as session:
        rows, total = await versions.history(session=session, model=ref, limit=limit, offset=offset)
    if total == 0:
        raise HTTPException(404, f"no prompt for model {ref!r}")
    return {"model": ref, "versions": [versions.as_version(v) for v in rows], "total": total}


class RestoreIn(BaseModel):
    description: Description | None = None


@router.post(
    "/prompts/history/{ref}",
    responses=KNOWN,
    summary="Restore a prompt version (`ref`: the version number)",
)
async def restore_version(
    ref: Annotated[str, Path(pattern=r"^[1-9][0-9]{0,8}$", description="The version")],
    state: State,
    principal: PlatformOperator,
    model: Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")],
    body: RestoreIn | None = None,
) -> Any:
    """A new version copying version `ref` (history is never rewritten)."""
    version = int(ref)
    async with writing(state, refuse) as session:
        row = await versions.restore(
            session=session,
            model=model,
            version=version,
            author=principal.subject,
            description=(body or RestoreIn()).description,
        )
    return {
        "model": model,
        "restored_version": version,
        "new_version": row.version,
        "description": row.description,
        "restored_at": row.created_at,
    }


class ImportIn(BaseModel):
    prompts: dict[Annotated[str, Field(max_length=128)], dict[str, Any]] = Field(
        max_length=versions.MAX_IMPORT_MODELS
    )
    history: dict[str, list[dict[str, Any]]] | None = None
    overwrite: StrictBool = False


@router.post("/prompts/import", summary="Import configurations from JSON")
async def import_prompts(
    body: ImportIn,
    state: State,
    principal: PlatformOperator,
    overwrite: Annotated[
        bool | None, Query(description="The same as the body's `overwrite`")
    ] = None,
) -> Any:
    """Models that already have a prompt are skipped unless `overwrite` (admin role; in the
    body or as `?overwrite=true`), which appends the imported config as a new version. An
    invalid entry is reported under `errors` and the valid ones are imported."""
    async with writing(state, refuse) as session:
        result = await versions.import_(
            session=session,
            document=body.model_dump(),
            overwrite=body.overwrite or bool(overwrite),
            author=principal.subject,
            may_overwrite=principal.can(Permission.ADMIN),
        )
    return result.__dict__


@router.get("/prompts/{model}", responses=KNOWN, summary="Get prompt for specific model")
async def get_prompt(model: Model, state: State, principal: PlatformReader) -> Any:
    p = await _current(state, model)
    return {"model": p.model, **versions.as_version(p)}


@router.put("/prompts/{model}", summary="Update prompt for specific model")
async def put_prompt(
    model: Model, body: PromptIn, state: State, principal: PlatformOperator
) -> Any:
    row, previous = await _update(state, model, body, principal.subject)
    return {
        "model": model,
        "version": row.version,
        "previous_version": previous,
        "description": row.description,
        "updated_at": row.created_at,
    }


# --- prompt tests ---------------------------------------------------------------------------


class TestIn(BaseModel):
    model: Annotated[str, Field(min_length=1, max_length=128)]
    event_id: RowId
    config: ConfigIn


def _result(task: Task) -> dict[str, Any] | None:
    found = testing.outcome(task)
    if found is None:
        return None
    return {k: found.get(k) for k in ("risk_score", "risk_level", "summary", "reasoning")}


@router.post("/prompts/test", responses=KNOWN, summary="Test modified prompt config")
async def test_prompt_config(body: TestIn, state: State, principal: PlatformOperator) -> Any:
    """The event's inputs analysed with the current and the modified configuration, as the
    analyzer would (queue, LLM semaphore, provider); nothing stored changes."""

    async def submit(session: Any) -> list[Task]:
        current = await versions.require_current(session, body.model)
        candidate = PromptConfig(
            system_prompt=body.config.system_prompt or current.system_prompt,
            temperature=body.config.temperature
            if body.config.temperature is not None
            else current.temperature,
            max_tokens=body.config.max_tokens or current.max_tokens,
        )
        runs = await testing.current_and_candidate(session, body.model, candidate)
        return await testing.start(
            session=session,
            model=body.model,
            event_id=body.event_id,
            candidates=runs,
            actor=principal.subject,
        )

    runs = await waited(state, submit)
    if isinstance(runs, JSONResponse):
        return runs
    now, new = runs
    a, b = testing.outcome(now) or {}, testing.outcome(new) or {}
    return {
        "event_id": body.event_id,
        "model": body.model,
        "current_result": _result(now),
        "modified_result": _result(new),
        "comparison": {
            "risk_score_diff": int(b.get("risk_score", 0)) - int(a.get("risk_score", 0)),
            "risk_level_changed": a.get("risk_level") != b.get("risk_level"),
            "latency_diff_ms": round(
                float(b.get("latency_ms") or 0) - float(a.get("latency_ms") or 0), 1
            ),
            "current_version": a.get("prompt_version"),
        },
    }


class CustomIn(BaseModel):
    event_id: RowId
    custom_prompt: PromptText
    temperature: Temperature = 0.1
    max_tokens: MaxTokens = 2048
    model: Annotated[str, Field(min_length=1, max_length=128)]


@router.post("/test-prompt", responses=KNOWN, summary="Test custom prompt (A/B testing)")
async def test_custom_prompt(body: CustomIn, state: State, principal: PlatformOperator) -> Any:
    """The prompt playground: one custom prompt on an event's inputs; nothing stored changes."""

    async def submit(session: Any) -> list[Task]:
        return await testing.start(
            session=session,
            model=body.model,
            event_id=body.event_id,
            candidates=[
                testing.TestRun(
                    "custom",
                    PromptConfig(body.custom_prompt, float(body.temperature), body.max_tokens),
                    None,
                )
            ],
            actor=principal.subject,
        )

    runs = await waited(state, submit)
    if isinstance(runs, JSONResponse):
        return runs
    found = testing.outcome(runs[0]) or {}
    return {
        "event_id": body.event_id,
        "result": _result(runs[0]),
        "latency_ms": found.get("latency_ms"),
        "tokens_used": found.get("tokens_used"),
    }
