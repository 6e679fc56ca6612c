"""Monitoring (seed 004) beyond the agents themselves: alert rules and the alerts they raise,
agent logs (full-text searchable), and webhook subscriptions to monitoring events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class AlertRule(Base):
    """One rule of the rule set (replaced as a whole by PUT /alerts/rules; a rule keeps its id
    while its name stays, so its alerts and pending conditions survive an edit)."""

    __tablename__ = "alert_rules"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    metric: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[float] = mapped_column(Float)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=0)
    severity: Mapped[str] = mapped_column(String(16))
    channels: Mapped[list[str]] = mapped_column(JSONB, default=list)
    recipients: Mapped[list[str]] = mapped_column(JSONB, default=list)
    auto_remediate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MonitoringPass(Base):
    """When a named installation-wide pass last ran (PostgreSQL's clock)."""

    __tablename__ = "monitoring_passes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertPending(Base):
    """A rule's condition holds for an agent but not yet for `duration_minutes` (the "for"
    clause): since when. Or (`suppressed`) an operator resolved the alert while it still
    held: no new alert until the condition has cleared once. Gone as soon as it clears."""

    __tablename__ = "alert_pending"

    rule_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    rule_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    rule_name: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    # active -> acknowledged -> resolved (or active -> resolved)
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[float] = mapped_column(Float)
    current: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[list[str]] = mapped_column(JSONB, default=list)
    triggered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_occurrence: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledge_notes: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(255))
    resolution: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(Text)
    auto_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    remediation_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_remediation_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # one open alert per rule and agent: it fires once and counts occurrences
        Index(
            "ux_alerts_open",
            "rule_id",
            "agent_id",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
        ),
        Index("ix_alerts_list", "triggered_at", "id"),
        Index("ix_alerts_status", "status", "triggered_at", "id"),
        Index("ix_alerts_agent", "agent_id", "triggered_at", "id"),
    )


class AgentLog(Base):
    __tablename__ = "agent_logs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    level: Mapped[str] = mapped_column(String(8))
    level_no: Mapped[int] = mapped_column(SmallInteger)
    agent_id: Mapped[str | None] = mapped_column(String(128))
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    trace_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    search: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed(
            "to_tsvector('simple', message) || jsonb_to_tsvector('simple', context, '[\"all\"]')",
            persisted=True,
        ),
        deferred=True,  # for the index and WHERE clauses; never worth loading
    )

    __table_args__ = (
        Index("ix_agent_logs_search", "search", postgresql_using="gin"),
        Index("ix_agent_logs_at", "at", "id"),
        Index("ix_agent_logs_agent_at", "agent_id", "at", "id"),
    )


class WebhookSubscription(Base):
    """Someone's endpoint for monitoring events, with its own signing secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONB)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
