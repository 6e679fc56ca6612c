"""Tasks that run later (issue 32): the time a task was submitted to run at (`run_at`, kept
for display) and, while it waits for that time, `due_at` (cleared when a worker's ticker
enqueues it), indexed for the ticker's "what is due" read; a workflow's `run_at` (created to
start later).

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("run_at", sa.DateTime(timezone=True)))
    op.add_column("tasks", sa.Column("due_at", sa.DateTime(timezone=True)))
    op.add_column("workflows", sa.Column("run_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_tasks_due", "tasks", ["due_at"], postgresql_where=sa.text("due_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_due", table_name="tasks")
    op.drop_column("workflows", "run_at")
    op.drop_column("tasks", "due_at")
    op.drop_column("tasks", "run_at")
