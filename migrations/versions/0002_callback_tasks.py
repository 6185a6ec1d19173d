"""Callback tasks: one open task per caller number, linked from the calls that made it.

Revision ID: 0002_callback_tasks
Revises: 0001_call_log
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_callback_tasks"
down_revision: str | Sequence[str] | None = "0001_call_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the statuses at this revision (see 0001 on why migrations copy enums).
STATUSES = ("open", "claimed", "done", "no_answer", "wrong_number", "cancelled")


def upgrade() -> None:
    status_list = ", ".join(f"'{v}'" for v in STATUSES)
    empty_text_array = sa.text("'{}'::text[]")
    op.create_table(
        "callback_tasks",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("did", sa.Text(), nullable=True),
        sa.Column("line_label", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("dial_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "sources", postgresql.ARRAY(sa.Text()), server_default=empty_text_array, nullable=False
        ),
        sa.Column(
            "voicemails",
            postgresql.ARRAY(sa.Text()),
            server_default=empty_text_array,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_call_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({status_list})", name=op.f("ck_callback_tasks_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_tasks")),
    )
    op.create_index(
        "uq_callback_tasks_open_number",
        "callback_tasks",
        ["number"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'claimed') AND number IS NOT NULL"),
    )
    op.create_index("ix_callback_tasks_status_due_at", "callback_tasks", ["status", "due_at"])
    op.add_column("calls", sa.Column("callback_due", sa.DateTime(timezone=True), nullable=True))
    op.add_column("calls", sa.Column("callback_task", postgresql.UUID(as_uuid=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_calls_callback_task_callback_tasks"),
        "calls",
        "callback_tasks",
        ["callback_task"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_calls_callback_task_callback_tasks"), "calls", type_="foreignkey")
    op.drop_column("calls", "callback_task")
    op.drop_column("calls", "callback_due")
    op.drop_index("ix_callback_tasks_status_due_at", table_name="callback_tasks")
    op.drop_index("uq_callback_tasks_open_number", table_name="callback_tasks")
    op.drop_table("callback_tasks")
