"""LLM queue: the stats reset marker and an index for finished-task roll-ups.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "llm_stats_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_stats_state")),
    )
    op.create_index(
        "ix_tasks_type_status_completed", "tasks", ["task_type", "status", "completed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_type_status_completed", table_name="tasks")
    op.drop_table("llm_stats_state")
