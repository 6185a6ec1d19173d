"""Callback queue: outbound calls from internal phones, linked to the task each one closed.

Revision ID: 0005_callback_queue
Revises: 0004_notifications
Create Date: 2026-11-25

A table of its own rather than rows in ``calls``: ``calls`` is the inbound call log whose every
ended row counts for or against the "no lost call" promise (``lost_call_condition``), has
inbound-only required columns (``did``, ``listed``) and is upserted by the writer; outbound
dial-backs would have to be excluded from every report. This table is append-only and small.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_callback_queue"
down_revision: str | Sequence[str] | None = "0004_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_calls",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extension", sa.Text(), nullable=False),
        sa.Column("dialled", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("uniqueid", sa.Text(), nullable=True),
        sa.Column("callback_task", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("dial_status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["callback_task"],
            ["callback_tasks.id"],
            name=op.f("fk_outbound_calls_callback_task_callback_tasks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_calls")),
    )
    op.create_index("ix_outbound_calls_started_at", "outbound_calls", ["started_at"])
    op.create_index("ix_outbound_calls_uniqueid", "outbound_calls", ["uniqueid"])


def downgrade() -> None:
    op.drop_index("ix_outbound_calls_uniqueid", table_name="outbound_calls")
    op.drop_index("ix_outbound_calls_started_at", table_name="outbound_calls")
    op.drop_table("outbound_calls")
