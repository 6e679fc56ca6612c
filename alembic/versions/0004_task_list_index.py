"""Index for the commonest list: one status, newest first.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status_created", table_name="tasks")
