"""Task counters per (queue, status, tenant), kept by a database trigger (migration 0007) in
the same transaction as every task change; read-only from Python. Sum over `shard`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class TaskCounter(Base):
    __tablename__ = "task_counters"

    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)  # '' for no tenant
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    tasks: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float] = mapped_column(Float)
