"""The reactions that chain the stages, run inside the transaction that finishes a stage's
task (as workflows do): a detection's result is stored and its enrichment written in the same
commit as the detection task's COMPLETED, so no stage is lost or done twice between them.
Each stage's AI decision is recorded as an effect (Decided) of that transaction, for whoever
keeps such records (the audit)."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Batch, Detection, Enrichment, SecurityEvent
from app.kernel import effects
from app.services.pipeline import batches, queries
from app.services.pipeline.config import config_of
from app.services.rows import attributes
from app.services.tasks import reactions
from app.services.tasks import submissions as task_submissions
from app.services.tasks.lifecycle import TaskStatus
from app.services.tasks.specs import TaskSpec

_SEEN = "opsgraph.pipeline.seen"
STAGES = frozenset({"detection", "enrichment", "analysis"})
ENDED = frozenset({TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value})


async def react(session: AsyncSession) -> None:
    """Bring the pipeline up to date with the stage tasks this transaction finished."""
    seen: set[tuple[str, str]] = session.info.setdefault(_SEEN, set())
    while True:
        todo = []
        for e in effects.peek(session):
            if not isinstance(e, effects.TaskChanged):
                continue
            snap = e.snapshot
            if snap.get("task_type") in STAGES and snap.get("status") in ENDED:
                key = (snap["id"], snap["status"])
                if key not in seen:
                    seen.add(key)
                    todo.append(snap)
        if not todo:
            return
        for snap in todo:
            await _REACTIONS[snap["task_type"]](session, snap)


def _image_name(path: str) -> str:
    return PurePath(path).name


def _decided(
    session: AsyncSession,
    stage: str,
    snap: dict[str, Any],
    detection: Detection,
    model: str,
    summary: str,
    output: dict[str, Any],
) -> None:
    """A decision about a detection, recorded for whoever keeps decisions (the audit)."""
    decision = effects.Decided(
        stage, snap, detection.camera_id, model, summary, output, detection_id=detection.id
    )
    effects.record(session, decision)


def _last_error(snap: dict[str, Any]) -> str:
    errors = snap.get("errors") or []
    return str(errors[-1]) if errors else f"task {snap['status'].lower()}"


async def _detected(session: AsyncSession, snap: dict[str, Any]) -> None:
    if snap["status"] != TaskStatus.COMPLETED:
        return  # a failed detection is the DLQ's (its task shows the error)
    result, given = snap.get("result") or {}, snap.get("input") or {}
    objects = [o for o in result.get("objects", []) if isinstance(o, dict)]
    top = max(objects, key=lambda o: float(o.get("confidence", 0)), default=None)
    row = await session.execute(
        insert(Detection)
        .values(
            task_id=snap["id"],
            camera_id=given["camera_id"],
            file_path=given["file_path"],
            file_hash=given["file_hash"],
            detection_type=top.get("label") if top else None,
            confidence=float(top["confidence"]) if top else None,
            objects=objects,
            model_name=str(result.get("model") or config_of(session).detector),
            model_version=result.get("version"),
            latency_ms=result.get("latency_ms"),
            image_width=result.get("width"),
            image_height=result.get("height"),
            captured_at=datetime.fromisoformat(given["timestamp"]),
        )
        .on_conflict_do_nothing(index_elements=["task_id"])
        .returning(Detection)
    )
    detection = row.scalar_one_or_none()
    if detection is None:
        return  # stored before (a re-run)
    summary = f"image {_image_name(detection.file_path)} from camera {detection.camera_id}"
    output = {
        "objects": objects,
        "detection_type": detection.detection_type,
        "confidence": detection.confidence,
    }
    _decided(session, "detection", snap, detection, detection.model_name, summary, output)
    if top is None:
        return  # nothing in the picture: nothing to analyse
    await submit_enrichment(session, detection)


async def submit_enrichment(session: AsyncSession, detection: Detection) -> None:
    config = config_of(session)
    await task_submissions.submit_task(
        session=session,
        spec=TaskSpec(
            task_type="enrichment",
            queue=config.enrichment_queue,
            input={
                "detection_id": detection.id,
                "camera_id": detection.camera_id,
                "file_path": detection.file_path,
                "detection_type": detection.detection_type,
                "objects": detection.objects,
            },
            origin_instance=f"camera:{detection.camera_id}",
            origin_reference=str(detection.id),
            max_retries=config.max_retries,
            system=True,
        ),
        defaults=config.task_defaults,
    )


async def reprocess(*, session: AsyncSession, detection_id: int) -> Detection:
    """A new enrichment of a detection (the old ones stay; the newest is the one shown)."""
    detection = await queries.get_detection(session=session, detection_id=detection_id)
    await submit_enrichment(session, detection)
    return detection


async def _enriched(session: AsyncSession, snap: dict[str, Any]) -> None:
    given = snap.get("input") or {}
    stmt = select(Detection).where(Detection.id == int(given["detection_id"])).with_for_update()
    detection = (await session.execute(stmt)).scalar_one_or_none()
    if detection is None:
        return
    if snap["status"] == TaskStatus.COMPLETED:
        result = snap.get("result") or {}
        model = str(result.get("model") or config_of(session).enricher)
        summary = (
            f"detection {detection.id} ({detection.detection_type}) in image "
            f"{_image_name(detection.file_path)}"
        )
        output = {
            "description": result.get("description"),
            "attributes": result.get("attributes") or {},
            "confidence": result.get("confidence"),
        }
        _decided(session, "enrichment", snap, detection, model, summary, output)
        await session.execute(
            insert(Enrichment)
            .values(
                detection_id=detection.id,
                task_id=snap["id"],
                camera_id=detection.camera_id,
                detection_type=detection.detection_type,
                model_name=str(result.get("model") or config_of(session).enricher),
                model_version=result.get("version"),
                description=str(result.get("description") or ""),
                attributes=result.get("attributes") or {},
                confidence=result.get("confidence"),
                latency_ms=result.get("latency_ms"),
            )
            .on_conflict_do_nothing(index_elements=["task_id"])
        )
    # Enriched or not (a failed enrichment leaves the detection without a description), the
    # detection goes on to its batch: the analysis must not wait on an optional stage.
    await batches.add_detection(session=session, detection=detection)


async def _analysed(session: AsyncSession, snap: dict[str, Any]) -> None:
    given = snap.get("input") or {}
    batch_id = str(given["batch_id"])
    if snap["status"] != TaskStatus.COMPLETED:
        await batches.settle(
            session=session, batch_id=batch_id, event_id=None, error=_last_error(snap)
        )
        return
    batch = await session.get(Batch, batch_id)
    if batch is None:
        return
    result = snap.get("result") or {}
    row = await session.execute(
        insert(SecurityEvent)
        .values(
            batch_id=batch_id,
            camera_id=batch.camera_id,
            analysis_task_id=snap["id"],
            risk_score=int(result["risk_score"]),
            risk_level=str(result["risk_level"]),
            summary=str(result.get("summary") or ""),
            reasoning=str(result.get("reasoning") or ""),
            detection_count=batch.detection_count,
            model_name=snap.get("model"),
            input_tokens=int(snap.get("input_tokens") or 0),
            output_tokens=int(snap.get("output_tokens") or 0),
            latency_ms=snap.get("latency_ms"),
            started_at=batch.started_at,
            ended_at=batch.completed_at or batch.last_activity_at,
        )
        .on_conflict_do_nothing(index_elements=["batch_id"])
        .returning(SecurityEvent)
    )
    event = row.scalar_one_or_none()
    if event is None:
        return
    effects.record(
        session,
        effects.Decided(
            stage="analysis",
            snapshot=snap,
            camera_id=batch.camera_id,
            model=str(snap.get("model") or result.get("model") or config_of(session).analyzer),
            input_summary=f"batch {batch_id}: {batch.detection_count} detection(s) from camera "
            f"{batch.camera_id}",
            output={k: result.get(k) for k in ("risk_score", "risk_level", "summary", "reasoning")},
            batch_id=batch_id,
            event_id=event.id,
        ),
    )
    await batches.settle(session=session, batch_id=batch_id, event_id=event.id, error=None)
    effects.record(
        session, effects.Published("security_event", str(event.id), event_snapshot(event))
    )


def event_snapshot(event: SecurityEvent) -> dict[str, Any]:
    return attributes(event, "id", "camera_id", "batch_id", "risk_score", "risk_level")


_REACTIONS = {"detection": _detected, "enrichment": _enriched, "analysis": _analysed}


def register() -> None:
    """Chain the stages inside the transaction that finishes one (app/edge/domains.py)."""
    reactions.register("pipeline", react, task_types=STAGES)
