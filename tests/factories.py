"""Rows written straight into the tables, for tests that need a record the pipeline or the
evaluator would take a while to make: alerts, security events, batches and detections."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

ALERT = text(
    "INSERT INTO alerts (id, rule_name, agent_id, tenant_id, type, severity, status, title,"
    " message, metric, operator, threshold, current, channels, triggered_at, last_occurrence,"
    " occurrence_count, auto_resolved, remediation_attempts) VALUES (:id, 'r', :agent, :tenant,"
    " :type, :severity, 'active', 't', :message, :metric, '>', 5, 9, '[]', now(), now(), 1,"
    " false, 0)"
)


async def insert_alert(
    engine: Any,
    *,
    agent: str,
    tenant: str | None = None,
    type: str = "threshold",
    severity: str = "critical",
    message: str = "m",
    metric: str = "error_rate_percent",
) -> str:
    """An active alert of `agent`; its id."""
    alert_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            ALERT,
            {
                "id": alert_id,
                "agent": agent,
                "tenant": tenant,
                "type": type,
                "severity": severity,
                "message": message,
                "metric": metric,
            },
        )
    return alert_id


def events_statement(risk_score_sql: str = "5") -> Any:
    """`:n` security events of camera `yard`; `risk_score_sql` is an expression of `g`, the
    event's number (e.g. `(g % 5) * 20` for ties)."""
    return text(
        "INSERT INTO security_events (batch_id, camera_id, analysis_task_id, risk_score,"
        " risk_level, summary, reasoning, detection_count, input_tokens, output_tokens,"
        " started_at, ended_at, created_at) SELECT 'b-' || gen_random_uuid(), 'yard',"
        f" gen_random_uuid(), {risk_score_sql}, 'low', 'event ' || g, 'r', 1, 0, 0, now(),"
        " now(), now() FROM generate_series(1, :n) g RETURNING id"
    )


async def insert_events(engine: Any, n: int, *, risk_score_sql: str = "5") -> list[int]:
    """`n` security events; their ids, in insertion order."""
    async with engine.begin() as conn:
        rows = await conn.execute(events_statement(risk_score_sql), {"n": n})
        return [int(i) for i in rows.scalars()]


async def insert_batch(
    engine: Any, batch_id: str, *, camera: str = "yard", closes_in_seconds: int = 3600
) -> None:
    """An aggregating batch of `camera` that closes in `closes_in_seconds`."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO batches (batch_id, camera_id, status, detection_count, started_at,"
                " last_activity_at, window_ends_at, due_at) VALUES (:b, :c, 'aggregating', 0,"
                " now(), now(), now() + make_interval(secs => :s),"
                " now() + make_interval(secs => :s))"
            ),
            {"b": batch_id, "c": camera, "s": closes_in_seconds},
        )


async def insert_detection(
    engine: Any,
    file_path: str,
    *,
    camera: str = "yard",
    detection_type: str | None = "person",
    batch_id: str | None = None,
) -> int:
    """A detection of `camera` whose frame is `file_path`; its id."""
    async with engine.begin() as conn:
        found = await conn.scalar(
            text(
                "INSERT INTO detections (task_id, camera_id, file_path, file_hash,"
                " detection_type, confidence, objects, model_name, batch_id, captured_at,"
                " created_at) VALUES (gen_random_uuid(), :c, :p, md5(:p), :t, 0.9, '[]',"
                " 'yolo26', :b, now(), now()) RETURNING id"
            ),
            {"c": camera, "p": file_path, "t": detection_type, "b": batch_id},
        )
    return int(found)
