"""When each installation-wide pass (the alert evaluator) last ran, in PostgreSQL's own time:
a pass is skipped when the previous one is younger than its interval, so workers that all try
(Redis, which hands out the ticks, is away) do not each count an occurrence.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitoring_passes",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monitoring_passes")
