"""Monitoring (seed 004): alert rules, pending conditions and alerts; agent logs with a
full-text index; webhook subscriptions and their deliveries; an agent's announced status.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSONB = postgresql.JSONB()
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.add_column("agents", sa.Column("observed_status", sa.String(16)))
    # fleet-wide time windows (metrics, dashboard) and retention read samples by time alone
    op.create_index("ix_agent_samples_at", "agent_samples", ["at"])
    op.create_table(
        "alert_rules",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(8), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("channels", JSONB, nullable=False),
        sa.Column("recipients", JSONB, nullable=False),
        sa.Column("auto_remediate", JSONB),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "alert_pending",
        sa.Column("rule_id", UUID, primary_key=True),
        sa.Column("agent_id", sa.String(128), primary_key=True),
        sa.Column("since", TS, nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("rule_id", UUID),
        sa.Column("rule_name", sa.String(200), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(8), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("current", sa.Float()),
        sa.Column("channels", JSONB, nullable=False),
        sa.Column("triggered_at", TS, nullable=False),
        sa.Column("last_occurrence", TS, nullable=False),
        sa.Column("occurrence_count", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sa.String(255)),
        sa.Column("acknowledged_at", TS),
        sa.Column("acknowledge_notes", sa.Text()),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(255)),
        sa.Column("resolution", sa.Text()),
        sa.Column("root_cause", sa.Text()),
        sa.Column("auto_resolved", sa.Boolean(), nullable=False),
        sa.Column("remediation_attempts", sa.Integer(), nullable=False),
        sa.Column("last_remediation_at", TS),
    )
    op.create_index(
        "ux_alerts_open",
        "alerts",
        ["rule_id", "agent_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.create_index("ix_alerts_list", "alerts", ["triggered_at", "id"])
    op.create_index("ix_alerts_status", "alerts", ["status", "triggered_at", "id"])
    op.create_index("ix_alerts_agent", "alerts", ["agent_id", "triggered_at", "id"])
    op.create_table(
        "agent_logs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("level_no", sa.SmallInteger(), nullable=False),
        sa.Column("agent_id", sa.String(128)),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("context", JSONB, nullable=False),
        sa.Column("trace_id", sa.String(128)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('simple', message) || "
                "jsonb_to_tsvector('simple', context, '[\"all\"]')",
                persisted=True,
            ),
        ),
    )
    op.create_index("ix_agent_logs_search", "agent_logs", ["search"], postgresql_using="gin")
    op.create_index("ix_agent_logs_at", "agent_logs", ["at", "id"])
    op.create_index("ix_agent_logs_agent_at", "agent_logs", ["agent_id", "at", "id"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", JSONB, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("tenant_id", sa.String(255)),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.add_column("webhook_deliveries", sa.Column("subscription_id", UUID))
    op.create_index(
        "ix_webhook_deliveries_subscription",
        "webhook_deliveries",
        ["subscription_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_subscription", "webhook_deliveries")
    op.drop_column("webhook_deliveries", "subscription_id")
    op.drop_table("webhook_subscriptions")
    op.drop_table("agent_logs")
    op.drop_table("alerts")
    op.drop_table("alert_pending")
    op.drop_table("alert_rules")
    op.drop_index("ix_agent_samples_at", "agent_samples")
    op.drop_column("agents", "observed_status")
