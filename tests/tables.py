"""The tables each test starts without rows, derived from the models (app/db/models): a new
model's table is emptied between tests without anyone remembering to add it to a list."""

from __future__ import annotations

import app.db.models  # noqa: F401 (every model registers its table with Base.metadata)
from app.db.base import Base

# put back to what the migrations leave instead of emptied (the clean-up re-inserts them)
RESTORED = frozenset({"prompt_versions"})
# holds no test's rows: when the alert evaluator last ran (one row per pass, overwritten by
# every pass the session's workers make), left as it is
KEPT = frozenset({"monitoring_passes"})


# The order TRUNCATE locks them in: the task tables first, as the session's workers write them
# (a task, then its transitions, logs and counters). TRUNCATE takes each table's lock in turn
# while a worker's transaction may hold one and want the next; alphabetical order (task_counters
# before tasks) deadlocks against them. Tables not named here follow, by name.
LOCK_ORDER = (
    # a schedule's fire locks its schedule, claims its tick, then submits a task
    "schedules",
    "schedule_fires",
    # a keyed submission claims its key, then writes its task
    "idempotency_keys",
    "tasks",
    "task_transitions",
    "task_logs",
    "api_keys",
    "workflows",
    "workflow_steps",
    "llm_stats_state",
    "webhook_deliveries",
    "task_counters",
    "task_rollups",
    "camera_images",
    "detections",
    "enrichments",
    "batches",
    "security_events",
    "agents",
    "agent_samples",
    "agent_controls",
    "alert_rules",
    "alert_pending",
    "alerts",
    "agent_logs",
    "webhook_subscriptions",
    "ai_audit_records",
    "ai_evaluations",
    "workflow_counters",
    "workflow_rollups",
)


def tables_to_empty() -> list[str]:
    """Every table of the models but those restored or kept, in LOCK_ORDER."""
    names = {t.name for t in Base.metadata.sorted_tables} - RESTORED - KEPT
    return [t for t in LOCK_ORDER if t in names] + sorted(names - set(LOCK_ORDER))


def truncate_statement() -> str:
    """One TRUNCATE of them all (CASCADE: the order of their foreign keys does not matter)."""
    return f"TRUNCATE {', '.join(tables_to_empty())} CASCADE"
