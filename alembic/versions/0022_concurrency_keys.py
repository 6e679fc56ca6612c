"""Concurrency keys (issue 33): at most `concurrency_limit` tasks of one key run at once
across the fleet; the key is the submission's or its type's (read from the input, the type's
`concurrency` as registered).

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("concurrency_key", sa.String(255)))
    op.add_column("tasks", sa.Column("concurrency_limit", sa.Integer()))
    # a type's own: {"key": <input field>, "limit": n}
    op.add_column("task_type_definitions", sa.Column("concurrency", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("task_type_definitions", "concurrency")
    op.drop_column("tasks", "concurrency_limit")
    op.drop_column("tasks", "concurrency_key")
