"""AI agents (seed 004): what each agent last reported, what operators want of it (desired
state), the metric samples its heartbeats carried, and every control made on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Identity, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(64))
    location_id: Mapped[str | None] = mapped_column(String(128))
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    configuration: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    health_checks: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    dependencies: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # what the agent says it is doing: running | starting | stopping
    reported_state: Mapped[str] = mapped_column(String(16), default="running")
    # what operators want: running | paused (the heartbeat reply carries it)
    desired_state: Mapped[str] = mapped_column(String(16), default="running")
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pause_reason: Mapped[str | None] = mapped_column(Text)
    resume_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    restart_generation: Mapped[int] = mapped_column(Integer, default=0)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the status last announced (agentStatusChanged, monitoring.agent_status_changed): status
    # is derived, so a change is noticed on a beat, a control or the evaluator's pass
    observed_status: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_agents_tenant", "tenant_id", "id"),
        Index("ix_agents_type", "type", "id"),
    )


class AgentSample(Base):
    """The metrics one heartbeat reported (since the previous one)."""

    __tablename__ = "agent_samples"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    errors_by_type: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    # individual latencies when the agent sends them (percentiles over a window come from
    # these); else its own percentiles
    latencies_ms: Mapped[list[float]] = mapped_column(ARRAY(Float), default=list)
    latency_avg_ms: Mapped[float | None] = mapped_column(Float)
    latency_p95_ms: Mapped[float | None] = mapped_column(Float)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_by_model: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    __table_args__ = (
        Index("ix_agent_samples_agent_at", "agent_id", "at"),
        Index("ix_agent_samples_at", "at"),
    )


class AgentControl(Base):
    """A control made on an agent: who, when, why, and what it changed."""

    __tablename__ = "agent_controls"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(
        String(32)
    )  # pause | resume | restart | scale | auto_resume
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    previous_status: Mapped[str | None] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    __table_args__ = (Index("ix_agent_controls_agent_at", "agent_id", "at"),)
