"""Agent reservations: which call holds which agent, shared by every daemon on the database.

Revision ID: 0006_agent_reservations
Revises: 0005_callback_queue
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_agent_reservations"
down_revision: str | Sequence[str] | None = "0005_callback_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_reservations",
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("node", sa.Text(), nullable=True),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_reservations")),
    )


def downgrade() -> None:
    op.drop_table("agent_reservations")
