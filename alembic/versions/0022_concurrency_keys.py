"""Concurrency keys and rate limits (issue 33): at most `concurrency_limit` tasks of one key run
at once across the fleet, and at most `rate_limit` start per window; the keys are the
submission's or its type's (read from the input, the type's `concurrency` and `rate` as
registered).

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
    # "<n>/<s|m|h>" and the key it counts under
    op.add_column("tasks", sa.Column("rate_key", sa.String(255)))
    op.add_column("tasks", sa.Column("rate_limit", sa.String(32)))
    # a type's own: {"key": <input field>, "limit": n}
    op.add_column("task_type_definitions", sa.Column("concurrency", postgresql.JSONB()))
    # a type's own: {"limit": "10/s", "key": <input field> or null}
    op.add_column("task_type_definitions", sa.Column("rate", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("task_type_definitions", "rate")
    op.drop_column("task_type_definitions", "concurrency")
    op.drop_column("tasks", "rate_limit")
    op.drop_column("tasks", "rate_key")
    op.drop_column("tasks", "concurrency_limit")
    op.drop_column("tasks", "concurrency_key")
