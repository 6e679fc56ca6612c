"""AI agents (seed 004): agents, their heartbeat samples and the controls made on them.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSONB = postgresql.JSONB()


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("location_id", sa.String(128)),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("configuration", JSONB, nullable=False),
        sa.Column("health_checks", JSONB, nullable=False),
        sa.Column("dependencies", JSONB, nullable=False),
        sa.Column("issues", JSONB, nullable=False),
        sa.Column("reported_state", sa.String(16), nullable=False),
        sa.Column("desired_state", sa.String(16), nullable=False),
        sa.Column("paused_at", TS),
        sa.Column("pause_reason", sa.Text()),
        sa.Column("resume_at", TS),
        sa.Column("restart_generation", sa.Integer(), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("last_heartbeat_at", TS, nullable=False),
    )
    op.create_index("ix_agents_tenant", "agents", ["tenant_id", "id"])
    op.create_index("ix_agents_type", "agents", ["type", "id"])
    op.create_table(
        "agent_samples",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("errors_by_type", JSONB, nullable=False),
        sa.Column("latencies_ms", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.Column("latency_avg_ms", sa.Float()),
        sa.Column("latency_p95_ms", sa.Float()),
        sa.Column("latency_p99_ms", sa.Float()),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("tokens_by_model", JSONB, nullable=False),
    )
    op.create_index("ix_agent_samples_agent_at", "agent_samples", ["agent_id", "at"])
    op.create_table(
        "agent_controls",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("previous_status", sa.String(16)),
        sa.Column("details", JSONB, nullable=False),
    )
    op.create_index("ix_agent_controls_agent_at", "agent_controls", ["agent_id", "at"])


def downgrade() -> None:
    for table in ("agent_controls", "agent_samples", "agents"):
        op.drop_table(table)
