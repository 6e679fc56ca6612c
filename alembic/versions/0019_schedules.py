"""Schedules (issue 32): cron schedules that start a task or a workflow, and their fires, one
row per (schedule, fire time) — the uniqueness that makes each tick run at most once whatever
the number of workers, restarts or a Redis flush.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("task_type", sa.String(100)),
        sa.Column("input", postgresql.JSONB(), nullable=False),
        sa.Column("workflow", postgresql.JSONB()),
        sa.Column("overlap", sa.String(16), nullable=False),
        sa.Column("catch_up", sa.String(16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("created_by", sa.String(255)),
        sa.Column("next_fire_at", sa.DateTime(timezone=True)),
        sa.Column("last_fire_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        postgresql_where=sa.text("NOT paused"),
    )
    op.create_index("ix_schedules_tenant", "schedules", ["tenant_id", "created_at", "id"])
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "schedule_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("schedules.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("task_id", postgresql.UUID(as_uuid=True)),
        sa.Column("workflow_id", postgresql.UUID(as_uuid=True)),
        sa.Column("message", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("schedule_id", "fire_time", name="uq_schedule_fires_tick"),
    )
    op.create_index("ix_schedule_fires_newest", "schedule_fires", ["schedule_id", "fire_time"])


def downgrade() -> None:
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
