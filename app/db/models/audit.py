"""The AI audit (seed 002): one record per AI decision of the camera pipeline (detection,
enrichment, analysis) and the self-evaluations of security events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, Identity, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class AuditRecord(Base):
    __tablename__ = "ai_audit_records"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))  # detection | enrichment | analysis
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    camera_id: Mapped[str] = mapped_column(String(255))
    detection_id: Mapped[int | None] = mapped_column(BigInteger)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(128))
    prompt_version: Mapped[int | None] = mapped_column(Integer)
    input_summary: Mapped[str] = mapped_column(Text)
    output: Mapped[dict[str, Any]] = mapped_column(JSONB)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_ai_audit_records_batch", "batch_id"),
        Index("ix_ai_audit_records_detection", "detection_id"),
        Index("ix_ai_audit_records_created", "created_at"),
    )


class Evaluation(Base):
    __tablename__ = "ai_evaluations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    camera_id: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), unique=True)
    judge_model: Mapped[str] = mapped_column(String(128))
    quality_scores: Mapped[dict[str, float]] = mapped_column(JSONB)
    model_contributions: Mapped[dict[str, float]] = mapped_column(JSONB)
    prompt_suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_ai_evaluations_event", "event_id", "created_at"),
        Index("ix_ai_evaluations_created", "created_at"),
    )
