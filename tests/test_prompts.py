"""Seed 002's prompt management: append-only versions with restore, history, export and import
(an empty installation rebuilt version for version), and prompt tests that run an event's
inputs through the analyzer's production path and change nothing stored."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from tests.client import GraphQLClient
from tests.processes import Proc
from tests.test_pipeline import analysed_batches, drop, jpeg

AUDIT = "/api/ai-audit"


async def test_versions_restore_export_and_import_round_trip(
    client_for: Callable[..., GraphQLClient],
    engine: Any,
) -> None:
    rest = client_for("ai_admin").http
    first = (await rest.get(f"{AUDIT}/prompt-config/nemotron")).json()
    assert first["version"] == 1 and first["temperature"] == 0.1

    updated = await rest.put(
        f"{AUDIT}/prompts/nemotron",
        json={"system_prompt": "You are an expert analyst.", "description": "Sharper"},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json() == {
        **updated.json(),
        "model": "nemotron",
        "version": 2,
        "previous_version": 1,
        "description": "Sharper",
    }
    config = await rest.put(f"{AUDIT}/prompt-config/nemotron", json={"temperature": 0.3})
    assert config.json()["version"] == 3
    assert config.json()["system_prompt"] == "You are an expert analyst."  # kept
    restored = await rest.post(
        f"{AUDIT}/prompts/history/1",
        params={"model": "nemotron"},
        json={"description": "Reverting to version 1"},
    )
    assert restored.status_code == 200, restored.text
    assert restored.json()["restored_version"] == 1 and restored.json()["new_version"] == 4
    now = (await rest.get(f"{AUDIT}/prompts/nemotron")).json()
    assert now["system_prompt"] == first["system_prompt"] and now["restored_from"] == 1

    history = (await rest.get(f"{AUDIT}/prompts/history/nemotron", params={"limit": 2})).json()
    assert history["total"] == 4 and [v["version"] for v in history["versions"]] == [4, 3]
    page_2 = (
        await rest.get(f"{AUDIT}/prompts/history/nemotron", params={"limit": 2, "offset": 2})
    ).json()
    assert [v["version"] for v in page_2["versions"]] == [2, 1]
    every = (await rest.get(f"{AUDIT}/prompts/history", params={"limit": 3})).json()["history"]
    assert [v["version"] for v in every["nemotron"]] == [4, 3, 2]
    assert [v["version"] for v in every["florence-2"]] == [1]
    prompts = (await rest.get(f"{AUDIT}/prompts")).json()["prompts"]
    assert prompts["nemotron"]["version"] == 4

    exported = (await rest.get(f"{AUDIT}/prompts/export")).json()
    assert set(exported["prompts"]) == {"nemotron", "florence-2"}
    before = await _versions(engine)

    # an empty installation: the import rebuilds every version
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM prompt_versions"))
    imported = await rest.post(f"{AUDIT}/prompts/import", json=exported)
    assert imported.status_code == 200, imported.text
    assert sorted(imported.json()["imported"]) == ["florence-2", "nemotron"]
    # every version as it was, but authored by the importer: a document cannot name authors
    rebuilt = await _versions(engine)
    assert {row[6] for row in rebuilt} == {"test"}
    assert [row[:6] + row[7:] for row in rebuilt] == [row[:6] + row[7:] for row in before]

    # again: skipped unless overwrite, which needs an admin
    again = (await rest.post(f"{AUDIT}/prompts/import", json=exported)).json()
    assert sorted(again["skipped"]) == ["florence-2", "nemotron"] and again["imported"] == []
    operator = client_for("ai_admin").http  # operates, is not an admin
    forced = await operator.post(f"{AUDIT}/prompts/import", json={**exported, "overwrite": True})
    assert forced.status_code == 403
    admin = await client_for("platform_admin").http.post(
        f"{AUDIT}/prompts/import",
        json={"prompts": {"nemotron": exported["prompts"]["nemotron"]}, "overwrite": True},
    )
    assert admin.json()["imported"] == ["nemotron"]
    assert (await rest.get(f"{AUDIT}/prompts/nemotron")).json()["version"] == 5

    # invalid entries are reported, valid ones kept; a wrong shape imports nothing
    mixed = await rest.post(
        f"{AUDIT}/prompts/import",
        json={
            "prompts": {
                "new-model": {"system_prompt": "Hi", "temperature": 0.2},
                "broken": {"system_prompt": "x", "temperature": 5},
            }
        },
    )
    assert mixed.json()["imported"] == ["new-model"]
    assert mixed.json()["errors"][0]["model"] == "broken"
    count = len(await _versions(engine))
    for bad in ({"prompts": ["nemotron"]}, {"nothing": 1}, "not an object"):
        assert (await rest.post(f"{AUDIT}/prompts/import", json=bad)).status_code == 422
    not_json = await rest.post(
        f"{AUDIT}/prompts/import",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert len(await _versions(engine)) == count

    huge = await rest.put(f"{AUDIT}/prompts/nemotron", json={"system_prompt": "x" * 20_001})
    assert huge.status_code == 422
    assert (await rest.get(f"{AUDIT}/prompts/unknown-model")).status_code == 404
    assert (
        await rest.post(f"{AUDIT}/prompts/history/99", params={"model": "nemotron"})
    ).status_code == 404
    assert (
        await client_for("viewer").http.put(f"{AUDIT}/prompts/nemotron", json={})
    ).status_code == 403


async def _versions(engine: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT model, version, system_prompt, temperature, max_tokens, description,"
                " author, restored_from FROM prompt_versions ORDER BY model, version"
            )
        )
        return [tuple(r) for r in rows.all()]


async def test_prompt_tests_run_the_analyzer_and_change_nothing(
    http: httpx.AsyncClient,
    cameras: Path,
    pipeline_worker: Callable[..., Proc],
    engine: Any,
    admin: GraphQLClient,
) -> None:
    pipeline_worker()
    for i in range(2):
        drop(cameras, "front_door", f"p{i}.jpg", jpeg(i))
    (batch,) = await analysed_batches(http, 1)
    event_id = batch["event_id"]
    analysis = (await http.get(f"/api/batches/{batch['batch_id']}")).json()
    before_event = await _event(engine, event_id)
    before_prompts = await _versions(engine)
    before_tables = await _table_counts(engine)
    current = next(v for v in before_prompts if v[0] == "nemotron" and v[1] == 1)
    slots_before = await _slot_grants(http)

    tested = await http.post(
        f"{AUDIT}/prompts/test",
        json={
            "model": "nemotron",
            "event_id": event_id,
            "config": {"system_prompt": "Be terse. Answer JSON.", "temperature": 0.2},
        },
    )
    assert tested.status_code == 200, tested.text
    body = tested.json()
    assert body["event_id"] == event_id and body["model"] == "nemotron"
    for side in ("current_result", "modified_result"):
        assert 0 <= body[side]["risk_score"] <= 100 and body[side]["summary"]
    # each side ran with its own configuration (the simulated analyzer names it) and they
    # answered differently
    assert fingerprint(current[2], current[3]) in body["current_result"]["reasoning"]
    assert fingerprint("Be terse. Answer JSON.", 0.2) in body["modified_result"]["reasoning"]
    assert body["current_result"] != body["modified_result"]
    assert body["comparison"]["risk_score_diff"] == (
        body["modified_result"]["risk_score"] - body["current_result"]["risk_score"]
    )
    assert body["comparison"]["current_version"] == 1
    assert isinstance(body["comparison"]["latency_diff_ms"], float)
    async with engine.connect() as conn:
        runs = (
            await conn.execute(
                text(
                    "SELECT queue, status, model, input->>'prompt_version' FROM tasks"
                    " WHERE task_type = 'prompt_test' ORDER BY created_at"
                )
            )
        ).all()
    assert [tuple(r) for r in runs] == [
        ("analysis_queue", "COMPLETED", "nemotron", "1"),
        ("analysis_queue", "COMPLETED", "nemotron", None),
    ]
    # each side held an LLM slot, as production analysis does
    assert await _slot_grants(http) == slots_before + 2

    # after an update the current side is version 2, with version 2's prompt
    updated = await http.put(
        f"{AUDIT}/prompts/nemotron", json={"system_prompt": "Version two.", "temperature": 0.3}
    )
    assert updated.status_code == 200, updated.text
    again = (
        await http.post(
            f"{AUDIT}/prompts/test",
            json={"model": "nemotron", "event_id": event_id, "config": {"temperature": 0.9}},
        )
    ).json()
    assert again["comparison"]["current_version"] == 2
    assert fingerprint("Version two.", 0.3) in again["current_result"]["reasoning"]
    assert fingerprint("Version two.", 0.9) in again["modified_result"]["reasoning"]
    async with engine.begin() as conn:  # back to version 1 for the rest of the test
        await conn.execute(text("DELETE FROM prompt_versions WHERE version = 2"))
    custom = await http.post(
        f"{AUDIT}/test-prompt",
        json={"event_id": event_id, "custom_prompt": "Focus on people.", "model": "nemotron"},
    )
    assert custom.status_code == 200, custom.text
    assert custom.json()["result"]["risk_level"] in ("low", "medium", "high", "critical")
    assert custom.json()["tokens_used"] > 0

    assert await _event(engine, event_id) == before_event
    assert await _versions(engine) == before_prompts
    # nothing but the tests' own tasks was written, in any table
    assert await _table_counts(engine) == before_tables
    assert analysis["event_id"] == event_id
    missing = await http.post(
        f"{AUDIT}/test-prompt",
        json={"event_id": 999999, "custom_prompt": "x", "model": "nemotron"},
    )
    assert missing.status_code == 404
    wrong_model = await http.post(
        f"{AUDIT}/test-prompt",
        json={"event_id": event_id, "custom_prompt": "x", "model": "florence-2"},
    )
    assert wrong_model.status_code == 422

    # the analyzer records which prompt version it used
    async with engine.connect() as conn:
        used = (
            (
                await conn.execute(
                    text("SELECT result->>'prompt_version' FROM tasks WHERE task_type = 'analysis'")
                )
            )
            .scalars()
            .all()
        )
    assert used and all(v == "1" for v in used)
    # and after an update, the next analysis records version 2 (and runs under its prompt)
    updated = await http.put(f"{AUDIT}/prompts/nemotron", json={"system_prompt": "Second."})
    assert updated.status_code == 200 and updated.json()["version"] == 2, updated.text
    drop(cameras, "back_door", "b0.jpg", jpeg(77))
    second = await analysed_batches(http, 2)
    newest = next(b for b in second if b["batch_id"] != batch["batch_id"])
    async with engine.connect() as conn:
        result = (
            await conn.execute(
                text(
                    "SELECT result FROM tasks WHERE task_type = 'analysis'"
                    " AND input->>'batch_id' = :b"
                ),
                {"b": newest["batch_id"]},
            )
        ).scalar_one()
    assert result["prompt_version"] == 2
    assert fingerprint("Second.", current[3]) in result["reasoning"]


async def _slot_grants(http: httpx.AsyncClient) -> int:
    """LLM slots the priority semaphore has granted, every priority class together."""
    stats = (await http.get("/api/v1/llm/stats")).json()["data"]["semaphore_stats"]
    return int(stats["total_high_priority"]) + int(stats["total_low_priority"])


def fingerprint(prompt: str, temperature: float) -> str:
    """How the docs (docs/concepts/pipeline.md, Analysis) say the simulated analyzer names the
    configuration it was given."""
    return hashlib.sha256(f"{float(temperature):.3f}|{prompt}".encode()).hexdigest()[:8]


# written by every task run, the prompt tests' included (a task's own rows and the figures)
TASK_TABLES = ("tasks", "task_transitions", "task_logs", "task_counters", "task_rollups")


async def _table_counts(engine: Any) -> dict[str, int]:
    """Rows of every table but the tasks' own ones (and agents': workers report themselves)."""
    async with engine.connect() as conn:
        names = (
            await conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                    " AND table_name NOT IN ('alembic_version', 'agents', 'agent_samples',"
                    " 'monitoring_passes')"
                )
            )
        ).scalars()
        return {
            n: int(await conn.scalar(text(f'SELECT count(*) FROM "{n}"')))
            for n in sorted(names)
            if n not in TASK_TABLES
        }


async def _event(engine: Any, event_id: int) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM security_events WHERE id = :id"), {"id": event_id}
            )
        ).one()
    return tuple(row)


async def test_prompts_in_graphql(admin: GraphQLClient) -> None:
    updated = (
        await admin.data(
            "UpdatePrompt", model="florence-2", systemPrompt="Describe it.", description="short"
        )
    )["updatePrompt"]
    assert not updated["errors"] and updated["previousVersion"] == 1
    assert updated["prompt"]["version"] == 2 and updated["prompt"]["maxTokens"] == 512
    restored = (await admin.data("RestorePrompt", model="florence-2", version=1))["restorePrompt"]
    assert restored["prompt"]["version"] == 3 and restored["prompt"]["restoredFrom"] == 1
    history = (await admin.data("PromptHistory", model="florence-2", limit=2))["promptHistory"]
    assert history["total"] == 3 and [v["version"] for v in history["versions"]] == [3, 2]
    too_long = await admin.data("UpdatePrompt", model="florence-2", systemPrompt="x" * 20_001)
    assert too_long["updatePrompt"]["errors"][0]["field"] == "system_prompt"
    wrong = (await admin.data("ImportPrompts", document={"prompts": []}))["importPrompts"]
    assert wrong["imported"] == [] and wrong["errors"]
    current = {p["model"]: p["version"] for p in (await admin.data("Prompts"))["prompts"]}
    assert current == {"florence-2": 3, "nemotron": 1}
    missing = (await admin.data("TestPrompt", model="nemotron", eventId=424242))["testPrompt"]
    assert missing["errors"] and missing["current"] is None
