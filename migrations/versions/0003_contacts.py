"""Known customers: contacts and their phone numbers (one number belongs to one contact).

Revision ID: 0003_contacts
Revises: 0002_callback_tasks
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_contacts"
down_revision: str | Sequence[str] | None = "0002_callback_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies at this revision (see 0001 on why migrations copy enums).
TIERS = ("A", "B", "C")
E164_CHECK = "number ~ '^\\+[1-9][0-9]{5,14}$'"


def upgrade() -> None:
    tier_list = ", ".join(f"'{v}'" for v in TIERS)
    op.create_table(
        "contacts",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("account_manager", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"tier IN ({tier_list})", name=op.f("ck_contacts_tier")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("external_id", name=op.f("uq_contacts_external_id")),
    )
    op.create_table(
        "contact_numbers",
        sa.Column("contact_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.CheckConstraint(E164_CHECK, name=op.f("ck_contact_numbers_number_e164")),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_numbers_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "number", name=op.f("pk_contact_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_contact_numbers_number")),
    )


def downgrade() -> None:
    op.drop_table("contact_numbers")
    op.drop_table("contacts")
