"""Task and workflow counters and time rollups, kept by statement-level database triggers
(migration 0014) in the same transaction as every change; read-only from Python. Sum over
`shard`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class TaskCounter(Base):
    """What exists now, per (queue, status, tenant, task type, provider, model)."""

    __tablename__ = "task_counters"

    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)  # '' for no tenant
    task_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)  # '' for none
    model: Mapped[str] = mapped_column(String(255), primary_key=True)  # '' for none
    # finished LLM tasks completed after the LLM statistics' reset marker
    since_reset: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)  # writer's pid; 0 folded
    tasks: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float] = mapped_column(Float)
    latency_ms_sum: Mapped[float] = mapped_column(Float)
    latencies: Mapped[int] = mapped_column(BigInteger)  # tasks with a latency
    generation_ms_sum: Mapped[float] = mapped_column(Float)  # latency of tasks with output


class TaskRollup(Base):
    """When tasks were created (kind c), started (s) and finished (f), per minute (grain m)
    and, for creations, per hour (grain h); the last 25 hours."""

    __tablename__ = "task_rollups"

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)  # '' unless finished
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)  # writer's pid; 0 folded
    tasks: Mapped[int] = mapped_column(BigInteger)
    wait_ms_sum: Mapped[float] = mapped_column(Float)  # started: created -> started
    duration_s_sum: Mapped[float] = mapped_column(Float)  # finished: started -> completed
    durations: Mapped[int] = mapped_column(BigInteger)  # finished tasks that had started


class WorkflowCounter(Base):
    """Workflows that exist now, per (status, tenant), with their steps."""

    __tablename__ = "workflow_counters"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)  # writer's pid; 0 folded
    workflows: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[int] = mapped_column(BigInteger)


class WorkflowRollup(Base):
    """Workflows created per minute (grain m) and hour (grain h); the last 25 hours."""

    __tablename__ = "workflow_rollups"

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)  # writer's pid; 0 folded
    workflows: Mapped[int] = mapped_column(BigInteger)
