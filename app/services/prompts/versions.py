"""Prompt versions: each change appends a version (who, when, why); the current one is the
highest. Restores copy an old version into a new one; history is never rewritten."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.base import utcnow
from app.db.models import PromptVersion
from app.kernel.errors import DomainError, InvalidInput, NotFound
from app.services.rows import attributes

MODEL_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
MAX_PROMPT_CHARS = 20_000
MAX_DESCRIPTION_CHARS = 2_000
MAX_TOKENS = 32_768
MAX_IMPORT_MODELS = 100
MAX_IMPORT_HISTORY = 1_000  # versions per model in one import document
MAX_VERSION = 2**31 - 1
EXPORT_FORMAT = "1.0"


class ImportNotAllowed(DomainError):
    code = "insufficient_permissions"


@dataclass(frozen=True)
class PromptConfig:
    system_prompt: str
    temperature: float
    max_tokens: int


def check_model(model: str, field: str = "model") -> None:
    if not MODEL_NAME.match(model):
        raise InvalidInput("a model name is 1 to 128 of A-Z a-z 0-9 _ . : / -", field=field)


def check_config(config: PromptConfig, field: str = "") -> None:
    at = f"{field}." if field else ""
    if not isinstance(config.system_prompt, str) or not config.system_prompt.strip():
        raise InvalidInput("system_prompt must not be empty", field=f"{at}system_prompt")
    if len(config.system_prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"system_prompt is longer than {MAX_PROMPT_CHARS} characters",
            field=f"{at}system_prompt",
        )
    if (
        not isinstance(config.temperature, int | float)
        or isinstance(config.temperature, bool)
        or not 0 <= config.temperature <= 2
    ):
        raise InvalidInput("temperature must be between 0 and 2", field=f"{at}temperature")
    if (
        not isinstance(config.max_tokens, int)
        or isinstance(config.max_tokens, bool)
        or not 1 <= config.max_tokens <= MAX_TOKENS
    ):
        raise InvalidInput(
            f"max_tokens must be between 1 and {MAX_TOKENS}", field=f"{at}max_tokens"
        )


async def current(session: AsyncSession, model: str) -> PromptVersion | None:
    stmt = (
        select(PromptVersion)
        .where(PromptVersion.model == model)
        .order_by(PromptVersion.version.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def require_current(session: AsyncSession, model: str) -> PromptVersion:
    found = await current(session, model)
    if found is None:
        raise NotFound(f"no prompt for model {model!r}", field="model", code="prompt_not_found")
    return found


async def all_current(session: AsyncSession) -> dict[str, PromptVersion]:
    latest = (
        select(PromptVersion.model, func.max(PromptVersion.version).label("v"))
        .group_by(PromptVersion.model)
        .subquery()
    )
    stmt = (
        select(PromptVersion)
        .join(
            latest,
            (PromptVersion.model == latest.c.model) & (PromptVersion.version == latest.c.v),
        )
        .order_by(PromptVersion.model)
    )
    return {p.model: p for p in (await session.execute(stmt)).scalars()}


async def _append(
    session: AsyncSession,
    model: str,
    config: PromptConfig,
    *,
    author: str,
    description: str | None,
    restored_from: int | None = None,
) -> tuple[PromptVersion, int | None]:
    check_model(model)
    check_config(config)
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(
            f"description is longer than {MAX_DESCRIPTION_CHARS} characters", field="description"
        )
    # one writer per model at a time: versions are numbered without gaps or races
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext("prompt:" + model))))
    previous = await current(session, model)
    row = PromptVersion(
        model=model,
        version=(previous.version + 1) if previous else 1,
        system_prompt=config.system_prompt,
        temperature=float(config.temperature),
        max_tokens=config.max_tokens,
        description=description,
        author=author,
        restored_from=restored_from,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row, previous.version if previous else None


async def update(
    *,
    session: AsyncSession,
    model: str,
    system_prompt: str | None,
    temperature: float | None,
    max_tokens: int | None,
    description: str | None,
    author: str,
) -> tuple[PromptVersion, int | None]:
    """A new version; fields not given keep the current version's values."""
    base = await current(session, model)
    if base is None and system_prompt is None:
        raise InvalidInput(
            f"model {model!r} has no prompt yet: give system_prompt", field="system_prompt"
        )
    config = PromptConfig(
        system_prompt=system_prompt if system_prompt is not None else base.system_prompt,  # type: ignore[union-attr]
        temperature=temperature if temperature is not None else (base.temperature if base else 0.1),
        max_tokens=max_tokens if max_tokens is not None else (base.max_tokens if base else 2048),
    )
    return await _append(session, model, config, author=author, description=description)


async def history(
    *, session: AsyncSession, model: str, limit: int, offset: int = 0
) -> tuple[list[PromptVersion], int]:
    """Newest first, and how many versions the model has."""
    stmt = (
        select(PromptVersion)
        .where(PromptVersion.model == model)
        .order_by(PromptVersion.version.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = list((await session.execute(stmt)).scalars())
    total = int(
        (
            await session.execute(
                select(func.count()).select_from(PromptVersion).where(PromptVersion.model == model)
            )
        ).scalar_one()
    )
    return rows, total


async def history_all(*, session: AsyncSession, limit: int) -> dict[str, list[PromptVersion]]:
    """The latest `limit` versions of every model (one query: a window per model)."""
    ranked = select(
        PromptVersion,
        func.row_number()
        .over(partition_by=PromptVersion.model, order_by=PromptVersion.version.desc())
        .label("n"),
    ).subquery()
    pv = aliased(PromptVersion, ranked)
    stmt = select(pv).where(ranked.c.n <= limit).order_by(pv.model, pv.version.desc())
    out: dict[str, list[PromptVersion]] = {}
    for row in (await session.execute(stmt)).scalars():
        out.setdefault(row.model, []).append(row)
    return out


async def version_counts(session: AsyncSession) -> dict[str, int]:
    """How many versions each model has."""
    rows = await session.execute(
        select(PromptVersion.model, func.count()).group_by(PromptVersion.model)
    )
    return {model: int(n) for model, n in rows.all()}


async def restore(
    *, session: AsyncSession, model: str, version: int, author: str, description: str | None
) -> PromptVersion:
    old = (
        await session.execute(
            select(PromptVersion).where(
                PromptVersion.model == model, PromptVersion.version == version
            )
        )
    ).scalar_one_or_none()
    if old is None:
        raise NotFound(
            f"model {model!r} has no version {version}", field="version", code="version_not_found"
        )
    row, _ = await _append(
        session,
        model,
        PromptConfig(old.system_prompt, old.temperature, old.max_tokens),
        author=author,
        description=description or f"restored version {version}",
        restored_from=version,
    )
    return row


CONFIG = ("system_prompt", "temperature", "max_tokens")


def as_config(p: PromptVersion) -> dict[str, Any]:
    return attributes(p, *CONFIG)


def as_version(p: PromptVersion) -> dict[str, Any]:
    shown = attributes(p, "version", *CONFIG, "description", "author", "restored_from")
    return shown | {"created_at": p.created_at.isoformat()}


async def export(session: AsyncSession) -> dict[str, Any]:
    """Seed 002's export (current configurations), plus every version under `history` so an
    import into an empty installation rebuilds the whole history."""
    currents = await all_current(session)
    rows = (
        await session.execute(
            select(PromptVersion).order_by(PromptVersion.model, PromptVersion.version)
        )
    ).scalars()
    history: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        history.setdefault(row.model, []).append(as_version(row))
    return {
        "prompts": {m: as_config(p) for m, p in currents.items()},
        "history": history,
        "exported_at": utcnow().isoformat(),
        "version": EXPORT_FORMAT,
    }


@dataclass
class ImportResult:
    imported: list[str]
    skipped: list[str]
    errors: list[dict[str, Any]]


def _config_of(entry: Any, field: str) -> PromptConfig:
    if not isinstance(entry, dict):
        raise InvalidInput("must be an object", field=field)
    config = PromptConfig(
        system_prompt=entry.get("system_prompt"),  # type: ignore[arg-type]
        temperature=entry.get("temperature", 0.1),
        max_tokens=entry.get("max_tokens", 2048),
    )
    check_config(config, field)
    return config


@dataclass(frozen=True)
class _HistoryEntry:
    raw: Any
    field: str
    version: int
    description: str | None
    restored_from: int | None


def _history_of(raw: Any, model: str) -> list[_HistoryEntry]:
    if raw is None:
        return []
    field = f"history.{model}"
    if not isinstance(raw, list):
        raise InvalidInput("must be a list of versions", field=field)
    if len(raw) > MAX_IMPORT_HISTORY:
        raise InvalidInput(f"at most {MAX_IMPORT_HISTORY} versions per model", field=field)
    out: list[_HistoryEntry] = []
    for i, v in enumerate(raw):
        at = f"{field}[{i}]"
        if not isinstance(v, dict):
            raise InvalidInput("must be an object", field=at)
        version = v.get("version", i + 1)
        if not _is_int(version) or not 1 <= version <= MAX_VERSION:
            raise InvalidInput("version must be a positive integer", field=f"{at}.version")
        description = v.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS
        ):
            raise InvalidInput(
                f"description must be text of at most {MAX_DESCRIPTION_CHARS} characters",
                field=f"{at}.description",
            )
        restored = v.get("restored_from")
        if restored is not None and (not _is_int(restored) or not 1 <= restored <= MAX_VERSION):
            raise InvalidInput(
                "restored_from must be a positive integer or null", field=f"{at}.restored_from"
            )
        out.append(_HistoryEntry(v, at, version, description, restored))
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def import_(
    *,
    session: AsyncSession,
    document: Any,
    overwrite: bool,
    author: str,
    may_overwrite: bool,
) -> ImportResult:
    """Import configurations. A model that has a prompt is skipped unless `overwrite` (an
    admin's call), which appends the imported config as a new version. A model with none takes
    the document's `history` when given (every version as exported), else its config as
    version 1. An invalid model entry is reported in `errors` and the valid ones are kept; a
    document of the wrong shape is refused whole (422)."""
    if not isinstance(document, dict) or not isinstance(document.get("prompts"), dict):
        raise InvalidInput(
            'the document must be a JSON object with a "prompts" object', field="prompts"
        )
    prompts: dict[str, Any] = document["prompts"]
    raw_history = document.get("history")
    history: dict[str, Any] = raw_history if isinstance(raw_history, dict) else {}
    if len(prompts) > MAX_IMPORT_MODELS:
        raise InvalidInput(f"at most {MAX_IMPORT_MODELS} models per import", field="prompts")
    if overwrite and not may_overwrite:
        raise ImportNotAllowed("importing with overwrite needs an admin role", field="overwrite")
    # the history's metadata is checked whole before anything is written: a document whose
    # history cannot be rebuilt as written is refused (422 naming the entry), not half-imported
    checked_history = {model: _history_of(history.get(model), model) for model in prompts}
    out = ImportResult([], [], [])
    existing = await all_current(session)
    for model, entry in prompts.items():
        try:
            check_model(model, f"prompts.{model}")
            config = _config_of(entry, f"prompts.{model}")
            versions = [(v, _config_of(v.raw, v.field)) for v in checked_history[model]]
        except InvalidInput as exc:
            out.errors.append({"model": model, "field": exc.field, "error": exc.message})
            continue
        if model in existing and not overwrite:
            out.skipped.append(model)
            continue
        if model not in existing and versions:
            # the caller is the author of what it imports; a document cannot name one
            for v, cfg in sorted(versions, key=lambda x: x[0].version):
                await _append(
                    session,
                    model,
                    cfg,
                    author=author,
                    description=v.description,
                    restored_from=v.restored_from,
                )
        else:
            await _append(session, model, config, author=author, description="imported")
        out.imported.append(model)
    return out
