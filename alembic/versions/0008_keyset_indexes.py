"""Indexes that serve keyset pages: every list index ends in the row id, so
`(sort_key, id) < (:v, :id)` is one index range scan (tenant-scoped lists included).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_tasks_tenant_created", table_name="tasks")
    op.create_index(
        "ix_tasks_tenant_created", "tasks", ["origin_tenant_id", "created_at", "id"]
    )
    op.drop_index("ix_tasks_updated_at", table_name="tasks")
    op.create_index("ix_tasks_updated_at", "tasks", ["updated_at", "id"])
    op.create_index("ix_tasks_completed_at", "tasks", ["completed_at", "id"])
    op.drop_index("ix_workflows_tenant_created", table_name="workflows")
    op.create_index(
        "ix_workflows_tenant_created", "workflows", ["origin_tenant_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_workflows_tenant_created", table_name="workflows")
    op.create_index("ix_workflows_tenant_created", "workflows", ["origin_tenant_id", "created_at"])
    op.drop_index("ix_tasks_completed_at", table_name="tasks")
    op.drop_index("ix_tasks_updated_at", table_name="tasks")
    op.create_index("ix_tasks_updated_at", "tasks", ["updated_at"])
    op.drop_index("ix_tasks_tenant_created", table_name="tasks")
    op.create_index("ix_tasks_tenant_created", "tasks", ["origin_tenant_id", "created_at"])
