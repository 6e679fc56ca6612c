"""LLM queue statistics state: when the totals were last reset (totals are derived from tasks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class LlmStatsState(Base):
    __tablename__ = "llm_stats_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: never
