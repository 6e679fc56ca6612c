"""The camera AI pipeline: images by content hash, detections, enrichments, batches, security
events.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "camera_images",
        sa.Column("file_hash", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("task_id", UUID, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_table(
        "detections",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("task_id", UUID, nullable=False, unique=True),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("detection_type", sa.String(64)),
        sa.Column("confidence", sa.Float()),
        sa.Column("objects", postgresql.JSONB(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("image_width", sa.Integer()),
        sa.Column("image_height", sa.Integer()),
        sa.Column("batch_id", sa.String(64)),
        sa.Column("captured_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_detections_batch", "detections", ["batch_id"])
    op.create_index(
        "ix_detections_camera_created", "detections", ["camera_id", "created_at", "id"]
    )
    op.create_table(
        "enrichments",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("detection_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", UUID, nullable=False, unique=True),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("detection_type", sa.String(64)),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64)),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("attributes", postgresql.JSONB(), nullable=False),
        sa.Column("confidence", sa.Float()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_enrichments_detection", "enrichments", ["detection_id", "id"])
    op.create_index("ix_enrichments_created", "enrichments", ["created_at", "id"])
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detection_count", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_activity_at", TS, nullable=False),
        sa.Column("window_ends_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("trigger", sa.String(16)),
        sa.Column("analysis_task_id", UUID),
        sa.Column("event_id", sa.BigInteger()),
        sa.Column("error", sa.Text()),
    )
    op.create_index(
        "ux_batches_open_camera",
        "batches",
        ["camera_id"],
        unique=True,
        postgresql_where=sa.text("status = 'aggregating'"),
    )
    op.create_index(
        "ix_batches_due", "batches", ["due_at"], postgresql_where=sa.text("status = 'aggregating'")
    )
    op.create_index("ix_batches_started", "batches", ["started_at", "batch_id"])
    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False, unique=True),
        sa.Column("camera_id", sa.String(255), nullable=False),
        sa.Column("analysis_task_id", UUID, nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("risk_level", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("detection_count", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128)),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_security_events_created", "security_events", ["created_at", "id"])
    op.create_index(
        "ix_security_events_camera", "security_events", ["camera_id", "created_at", "id"]
    )


    op.create_index(
        "ix_tasks_dead_letters",
        "tasks",
        ["queue", "dead_lettered_at", "id"],
        postgresql_where=sa.text("dead_lettered"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_dead_letters", table_name="tasks")
    for table in ("security_events", "batches", "enrichments", "detections", "camera_images"):
        op.drop_table(table)
