"""Fewer index entries per task write: every change to a task row writes an entry in each of
its indexes (its status and updated_at are indexed, so no update is HOT), and that was a
fifth of PostgreSQL's time on the hot path. The index on task_type alone duplicates the
leading column of (task_type, status, completed_at); the workflow and tenant indexes now
hold only rows that have a workflow or a tenant (every query on them names one).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_tasks_task_type", table_name="tasks")
    op.drop_index("ix_tasks_workflow_id", table_name="tasks")
    op.create_index(
        "ix_tasks_workflow_id",
        "tasks",
        ["workflow_id"],
        postgresql_where=sa.text("workflow_id IS NOT NULL"),
    )
    op.drop_index("ix_tasks_tenant_created", table_name="tasks")
    op.create_index(
        "ix_tasks_tenant_created",
        "tasks",
        ["origin_tenant_id", "created_at", "id"],
        postgresql_where=sa.text("origin_tenant_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_tenant_created", table_name="tasks")
    op.create_index("ix_tasks_tenant_created", "tasks", ["origin_tenant_id", "created_at", "id"])
    op.drop_index("ix_tasks_workflow_id", table_name="tasks")
    op.create_index("ix_tasks_workflow_id", "tasks", ["workflow_id"])
    op.create_index("ix_tasks_task_type", "tasks", ["task_type"])
