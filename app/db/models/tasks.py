"""The Task table (everything a worker executes), its transitions and its log lines."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    task_type: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=50)

    origin_instance: Mapped[str] = mapped_column(String(255))
    origin_zone: Mapped[str | None] = mapped_column(String(255))
    origin_tenant_id: Mapped[str | None] = mapped_column(String(255))
    origin_reference: Mapped[str | None] = mapped_column(String(255))

    input: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    result: Mapped[Any | None] = mapped_column(JSONB)
    result_ttl_seconds: Mapped[int | None] = mapped_column(Integer)
    errors: Mapped[list[str]] = mapped_column(JSONB, default=list)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=4)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_lettered: Mapped[bool] = mapped_column(Boolean, default=False)
    dead_lettered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_resumed: Mapped[bool] = mapped_column(Boolean, default=False)
    resume_attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    last_resume_attempt: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)

    provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(255))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float | None] = mapped_column(Float)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    worker_name: Mapped[str | None] = mapped_column(String(255))
    job_id: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    media: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    service_requests: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # the workflow step this task runs, if any (no FK: a task row stands on its own)
    workflow_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    workflow_step_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # when it was submitted to run (runAt / delaySeconds), kept; `due_at` is the same time
    # while the task waits for it, cleared once a worker's ticker enqueues it (migration 0018)
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # at most `concurrency_limit` tasks of this key (within the tenant) run at once across
    # the fleet (migration 0022; app/platform/dispatch.py's marker, workers/consumer.py's claim)
    concurrency_key: Mapped[str | None] = mapped_column(String(255))
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    # at most n of this key start per window ("10/s", "100/m"; the type's rate limit)
    rate_key: Mapped[str | None] = mapped_column(String(255))
    rate_limit: Mapped[str | None] = mapped_column(String(32))
    # the task whose handler submitted this one (ctx.submit), if any
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_tasks_created_at_id", "created_at", "id"),
        Index("ix_tasks_status_queue", "status", "queue"),
        # dashboards list one status newest first
        Index("ix_tasks_status_created", "status", "created_at", "id"),
        # queue figures look at what changed in the last hour
        Index("ix_tasks_updated_at", "updated_at", "id"),
        Index("ix_tasks_completed_at", "completed_at", "id"),
        # the dead letter queues: oldest first per queue
        Index(
            "ix_tasks_dead_letters",
            "queue",
            "dead_lettered_at",
            "id",
            postgresql_where=text("dead_lettered"),
        ),
        # only rows that have a tenant (or a workflow): plain rows skip them (migration 0015)
        Index(
            "ix_tasks_tenant_created",
            "origin_tenant_id",
            "created_at",
            "id",
            postgresql_where=text("origin_tenant_id IS NOT NULL"),
        ),
        Index(
            "ix_tasks_workflow_id", "workflow_id", postgresql_where=text("workflow_id IS NOT NULL")
        ),
        # the ticker's read: what is due (migration 0018)
        Index("ix_tasks_due", "due_at", postgresql_where=text("due_at IS NOT NULL")),
        # a task's children (ctx.submit; migration 0017)
        Index("ix_tasks_parent_id", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
        Index("ix_tasks_type_status_completed", "task_type", "status", "completed_at"),
        # queue figures: retries waiting out their backoff; drain estimates: the newest
        # completed and running LLM tasks of a queue (migration 0014)
        Index(
            "ix_tasks_retry_wait",
            "queue",
            "next_attempt_at",
            postgresql_where=text("status = 'QUEUED' AND next_attempt_at IS NOT NULL"),
        ),
        Index(
            "ix_tasks_llm_running",
            "queue",
            "started_at",
            postgresql_where=text("status = 'RUNNING' AND task_type = 'llm'"),
        ),
        Index(
            "ix_tasks_llm_completed",
            "queue",
            "completed_at",
            postgresql_where=text("status = 'COMPLETED' AND task_type = 'llm'"),
        ),
    )


class TaskTransition(Base):
    __tablename__ = "task_transitions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)


class TaskLog(Base):
    __tablename__ = "task_logs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    # structured fields a handler gave with the line (ctx.log(message, **fields))
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class TaskTypeDefinition(Base):
    """A task type as a worker registered it: one row per distinct definition of a name (a
    rolling deploy shows two), the newest first registered being the one submissions obey."""

    __tablename__ = "task_type_definitions"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    definition_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    input_schema: Mapped[dict[str, Any]] = mapped_column(JSONB)
    retries: Mapped[int | None] = mapped_column(Integer)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # {"key": <input field>, "limit": n} (migration 0022)
    concurrency: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # {"limit": "10/s", "key": <input field> or None} (migration 0022)
    rate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    first_registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_worker: Mapped[str | None] = mapped_column(String(255))
