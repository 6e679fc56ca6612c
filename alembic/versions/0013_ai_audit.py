"""The AI audit (seed 002): a record per AI decision of the pipeline, and event evaluations.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSONB = postgresql.JSONB()
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "ai_audit_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("task_id", UUID, nullable=False, unique=True),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("detection_id", sa.BigInteger()),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("event_id", sa.BigInteger()),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("prompt_version", sa.Integer()),
        sa.Column("input_summary", sa.Text(), nullable=False),
        sa.Column("output", JSONB, nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_ai_audit_records_batch", "ai_audit_records", ["batch_id"])
    op.create_index("ix_ai_audit_records_detection", "ai_audit_records", ["detection_id"])
    op.create_index("ix_ai_audit_records_created", "ai_audit_records", ["created_at"])
    op.create_table(
        "ai_evaluations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("task_id", UUID, unique=True),
        sa.Column("judge_model", sa.String(128), nullable=False),
        sa.Column("quality_scores", JSONB, nullable=False),
        sa.Column("model_contributions", JSONB, nullable=False),
        sa.Column("prompt_suggestions", JSONB, nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_ai_evaluations_event", "ai_evaluations", ["event_id", "created_at"])
    op.create_index("ix_ai_evaluations_created", "ai_evaluations", ["created_at"])


def downgrade() -> None:
    op.drop_table("ai_evaluations")
    op.drop_table("ai_audit_records")
