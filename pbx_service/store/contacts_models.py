"""SQLAlchemy models of the known-customers directory: ``contacts`` and ``contact_numbers``.

Registered on `pbx_service.store.models.Base` (models.py imports this module last), so the
one ``metadata`` holds them and the migration test compares them too.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from pbx_service.store.models import Base

# Tiers a stored contact may have. "unknown" (calls.queueing.Tier.UNKNOWN) is what a caller
# who is NOT in the directory gets, so it is never stored.
CONTACT_TIERS: tuple[str, ...] = ("A", "B", "C")

# E.164: "+", a country code not starting with 0, at most 15 digits in all.
E164_CHECK_SQL = "number ~ '^\\+[1-9][0-9]{5,14}$'"


class Contact(Base):
    """A known customer. ``external_id`` is the CRM's id: re-imports update by it."""

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    company: Mapped[str | None] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(Text, nullable=False)
    # An agent id or a dial string; the call flow decides which.
    account_manager: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint(
            "tier IN (" + ", ".join(f"'{t}'" for t in CONTACT_TIERS) + ")", name="tier"
        ),
        # NULLs are distinct in a PostgreSQL unique constraint: "unique when present".
        UniqueConstraint("external_id"),
    )


class ContactNumber(Base):
    """One phone number of a contact, in E.164. A number belongs to at most one contact."""

    __tablename__ = "contact_numbers"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(Text, primary_key=True)
    # work, mobile, home, fax, other: free text, the importer fills it from the column.
    kind: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (
        CheckConstraint(E164_CHECK_SQL, name="number_e164"),
        # The lookup at the start of every inbound call is an equality probe on this index.
        UniqueConstraint("number"),
    )
