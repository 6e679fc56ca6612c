"""Workflows: a DAG of steps, each of which becomes a task when its dependencies complete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    origin_instance: Mapped[str] = mapped_column(String(255))
    origin_zone: Mapped[str | None] = mapped_column(String(255))
    origin_tenant_id: Mapped[str | None] = mapped_column(String(255))
    origin_reference: Mapped[str | None] = mapped_column(String(255))
    final_step_id: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    # created to start later (runAt / delaySeconds): its first steps wait for it (0018)
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    completed_steps: Mapped[int] = mapped_column(Integer, default=0)
    current_step: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error_message: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[str]] = mapped_column(JSONB, default=list)
    result: Mapped[Any | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_workflows_created_at_id", "created_at", "id"),
        Index("ix_workflows_status", "status"),
        Index("ix_workflows_tenant_created", "origin_tenant_id", "created_at", "id"),
    )


class WorkflowStep(Base):
    __tablename__ = "workflow_steps"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    workflow_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)  # topological order, ties by declaration
    declared: Mapped[int] = mapped_column(Integer)  # declaration order
    task_type: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    dependencies: Mapped[list[str]] = mapped_column(JSONB, default=list)
    input_mappings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    input: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    result: Mapped[Any | None] = mapped_column(JSONB)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # TASK (its task runs it), SLEEP, APPROVAL or SIGNAL (it waits; migration 0020)
    kind: Mapped[str] = mapped_column(String(16), default="TASK", server_default="TASK")
    # what a waiting step waits for: sleep_seconds/until, signal, timeout_seconds,
    # default_decision
    wait: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # when a sleep ends or a wait times out (the ticker's read)
    wait_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decision_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("workflow_id", "step_id", name="uq_workflow_steps_step"),
        Index(
            "ix_workflow_steps_wait_until",
            "wait_until",
            postgresql_where=text("wait_until IS NOT NULL"),
        ),
    )
