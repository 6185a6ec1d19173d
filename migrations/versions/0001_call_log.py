"""Call log: calls and call_events.

Revision ID: 0001_call_log
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_call_log"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the Outcome values at this revision: a migration must not change when the
# enum in code changes later (a new value gets a new revision replacing the CHECK).
OUTCOMES = (
    "answered",
    "voicemail",
    "callback",
    "abandoned",
    "self_service",
    "transferred",
    "overflow",
    "failed",
)


def upgrade() -> None:
    outcome_list = ", ".join(f"'{v}'" for v in OUTCOMES)
    op.create_table(
        "calls",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("linkedid", sa.Text(), nullable=True),
        sa.Column("node", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caller_number", sa.Text(), nullable=True),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("did", sa.Text(), nullable=False),
        sa.Column("line_label", sa.Text(), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.Text(), nullable=True),
        sa.Column("wait_seconds", sa.Double(), nullable=True),
        sa.Column("talk_seconds", sa.Double(), nullable=True),
        sa.Column("recording", sa.Text(), nullable=True),
        sa.Column("voicemail", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column(
            "menu_path",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            f"outcome IS NULL OR outcome IN ({outcome_list})", name=op.f("ck_calls_outcome")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_caller_number", "calls", ["caller_number"], postgresql_using="hash")
    op.create_table(
        "call_events",
        sa.Column("call_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_events_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", "seq", name=op.f("pk_call_events")),
    )


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_index("ix_calls_caller_number", table_name="calls")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_table("calls")
