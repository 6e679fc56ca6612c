"""Workflow steps that wait (issue 32): a step's kind (TASK, SLEEP, APPROVAL, SIGNAL), what it
waits for, until when (a sleep's end or a timeout, for the ticker), and who decided an
approval, with the note.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workflow_steps",
        sa.Column("kind", sa.String(16), nullable=False, server_default="TASK"),
    )
    op.add_column("workflow_steps", sa.Column("wait", postgresql.JSONB()))
    op.add_column("workflow_steps", sa.Column("wait_until", sa.DateTime(timezone=True)))
    op.add_column("workflow_steps", sa.Column("decided_by", sa.String(255)))
    op.add_column("workflow_steps", sa.Column("decision_note", sa.Text()))
    op.create_index(
        "ix_workflow_steps_wait_until",
        "workflow_steps",
        ["wait_until"],
        postgresql_where=sa.text("wait_until IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_steps_wait_until", table_name="workflow_steps")
    for column in ("decision_note", "decided_by", "wait_until", "wait", "kind"):
        op.drop_column("workflow_steps", column)
