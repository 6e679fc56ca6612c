"""Prompt versions (seed 002's AI audit), with the pipeline's default prompts as version 1.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

# The defaults of the camera pipeline's model services (OPSGRAPH_ANALYZER_NAME, ...ENRICHER_NAME
# default names); copied here so the migration never changes with the code.
DEFAULTS = [
    (
        "nemotron",
        "You are a security analysis AI for home and business cameras. Given the detections and "
        "their descriptions from one camera over a short window, assess the risk. Answer with one "
        'JSON object: {"risk_score": 0-100, "risk_level": "low|medium|high|critical", '
        '"summary": "...", "reasoning": "..."}.',
        0.1,
        2048,
    ),
    (
        "florence-2",
        "Describe the main object in this security camera image. Answer with JSON: "
        '{"description": "...", "attributes": {...}, "confidence": 0-1}.',
        0.0,
        512,
    ),
]


def upgrade() -> None:
    table = op.create_table(
        "prompt_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("restored_from", sa.Integer()),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("model", "version", name="uq_prompt_versions_model"),
    )
    op.bulk_insert(
        table,
        [
            {
                "model": model,
                "version": 1,
                "system_prompt": prompt,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "description": "default",
                "author": "opsgraph",
            }
            for model, prompt, temperature, max_tokens in DEFAULTS
        ],
    )


def downgrade() -> None:
    op.drop_table("prompt_versions")
