"""SQLAlchemy models of the call log. The Alembic migrations must build exactly this schema
(tests/store/test_migrations.py proves it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pbx_service.store.records import Outcome

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OUTCOME_VALUES: tuple[str, ...] = tuple(o.value for o in Outcome)


def outcome_check_sql() -> str:
    """The CHECK expression on ``calls.outcome``; shared with the migration."""
    values = ", ".join(f"'{v}'" for v in OUTCOME_VALUES)
    return f"outcome IS NULL OR outcome IN ({values})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Call(Base):
    """One call, latest known version (the writer upserts by ``id``)."""

    __tablename__ = "calls"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    channel_id: Mapped[str] = mapped_column(Text, nullable=False)
    linkedid: Mapped[str | None] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    caller_number: Mapped[str | None] = mapped_column(Text)
    caller_name: Mapped[str | None] = mapped_column(Text)
    did: Mapped[str] = mapped_column(Text, nullable=False)
    line_label: Mapped[str | None] = mapped_column(Text)
    listed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    outcome: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(Text)
    wait_seconds: Mapped[float | None] = mapped_column(Double)
    talk_seconds: Mapped[float | None] = mapped_column(Double)
    recording: Mapped[str | None] = mapped_column(Text)
    voicemail: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(Text)
    menu_path: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    # When the callback task this call makes should be worked (after hours: next opening).
    callback_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The task that follows this call up; set only by the writer's callback step, never by
    # an upsert of the call row, so a replayed older version cannot unlink it.
    callback_task: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("callback_tasks.id", ondelete="SET NULL")
    )
    # Set by the writer at submit time; an upsert never replaces a newer version with an older.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        CheckConstraint(outcome_check_sql(), name="outcome"),
        Index("ix_calls_started_at", "started_at"),
        # Hash, not btree: a caller number is attacker-controlled text of any length, and a
        # btree entry over ~2.7 kB is rejected; lookups by number are equality anyway.
        Index("ix_calls_caller_number", "caller_number", postgresql_using="hash"),
    )


class CallEvent(Base):
    """One step of a call's path, stored once per ``(call_id, seq)``."""

    __tablename__ = "call_events"

    call_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


CALLBACK_STATUSES: tuple[str, ...] = (
    "open",
    "claimed",
    "done",
    "no_answer",
    "wrong_number",
    "cancelled",
)
OPEN_CALLBACK_STATUSES: tuple[str, ...] = ("open", "claimed")


class AgentReservation(Base):
    """An agent held by one call (ringing, talking, or in wrap-up until ``expires_at``), so
    that several daemons sharing this database never offer the same agent two calls."""

    __tablename__ = "agent_reservations"

    agent_id: Mapped[str] = mapped_column(Text, primary_key=True)
    call_id: Mapped[str] = mapped_column(Text, nullable=False)
    node: Mapped[str | None] = mapped_column(Text)
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class CallbackTask(Base):
    """Someone to call back. One open task per caller number: a repeat call adds to it."""

    __tablename__ = "callback_tasks"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    number: Mapped[str | None] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean, nullable=False)
    caller_name: Mapped[str | None] = mapped_column(Text)
    did: Mapped[str | None] = mapped_column(Text)
    line_label: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    dial_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    sources: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    voicemails: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_call_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{v}'" for v in CALLBACK_STATUSES) + ")", name="status"
        ),
        # The invariant "one open task per caller number", kept by PostgreSQL itself so that
        # two daemons writing at once cannot open a second one.
        Index(
            "uq_callback_tasks_open_number",
            "number",
            unique=True,
            postgresql_where=text("status IN ('open', 'claimed') AND number IS NOT NULL"),
        ),
        Index("ix_callback_tasks_status_due_at", "status", "due_at"),
    )


class OutboundCall(Base):
    """A call an internal phone placed through the outbound FastAGI route (append-only).

    Not a row of ``calls``: that is the inbound log every "lost call" figure is computed from.
    """

    __tablename__ = "outbound_calls"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    extension: Mapped[str] = mapped_column(Text, nullable=False)
    # As the phone dialled it, and E.164-normalised (what callback tasks are keyed by).
    dialled: Mapped[str] = mapped_column(Text, nullable=False)
    number: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(Text)
    uniqueid: Mapped[str | None] = mapped_column(Text)
    # The open callback task this call closed, if any.
    callback_task: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("callback_tasks.id", ondelete="SET NULL")
    )
    # Asterisk's DIALSTATUS, reported by the hangup handler (ANSWER, NOANSWER, BUSY, CANCEL...).
    dial_status: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_outbound_calls_started_at", "started_at"),
        # The hangup handler finds its call by the channel's unique id.
        Index("ix_outbound_calls_uniqueid", "uniqueid"),
    )


metadata = Base.metadata
from pbx_service.store import contacts_models as _contacts_models  # noqa: E402,F401
from pbx_service.store import notify_models as _notify_models  # noqa: E402,F401
