"""Task types of users' own (issue 31): the registry workers write their types to, a task's
parent (child tasks submitted by a handler), fields on a task's log lines, and task type
names up to 100 characters.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = ("tasks", "task_counters", "workflow_steps")


def upgrade() -> None:
    op.create_table(
        "task_type_definitions",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("definition_hash", sa.String(64), primary_key=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("input_schema", postgresql.JSONB(), nullable=False),
        sa.Column("retries", sa.Integer()),
        sa.Column("timeout_seconds", sa.Float()),
        sa.Column("builtin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("first_registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_worker", sa.String(255)),
    )
    for table in WIDENED:
        op.alter_column(table, "task_type", type_=sa.String(100))
    op.add_column(
        "tasks",
        sa.Column(
            "parent_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("tasks.id", ondelete="SET NULL"),
        ),
    )
    op.create_index(
        "ix_tasks_parent_id", "tasks", ["parent_id"], postgresql_where=sa.text("parent_id IS NOT NULL")
    )
    op.add_column("task_logs", sa.Column("fields", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("task_logs", "fields")
    op.drop_index("ix_tasks_parent_id", table_name="tasks")
    op.drop_column("tasks", "parent_id")
    for table in WIDENED:
        op.alter_column(table, "task_type", type_=sa.String(64))
    op.drop_table("task_type_definitions")
