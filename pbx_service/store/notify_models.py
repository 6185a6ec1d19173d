"""SQLAlchemy model of the notification outbox, ``notifications``.

Registered on `pbx_service.store.models.Base` (models.py imports this module at its end), so
the one ``metadata`` holds it and the migration test compares it too.

A row is one message to one destination (the e-mail recipients, or one webhook URL). Rows are
written in the call-log writer's transaction and sent later by
`pbx_service.notify.dispatcher.NotificationDispatcher`. No foreign keys to ``calls`` or
``callback_tasks``: a notification stays a record of what was sent after retention deletes
the call.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from pbx_service.store.models import Base

NOTIFICATION_KINDS: tuple[str, ...] = ("voicemail", "callback_task")
NOTIFICATION_CHANNELS: tuple[str, ...] = ("email", "webhook")
NOTIFICATION_STATUSES: tuple[str, ...] = ("pending", "sending", "delivered", "failed")
# Statuses a dispatcher may claim: pending, and sending whose lease ran out (a crashed sender).
DUE_STATUSES_SQL = "status IN ('pending', 'sending')"


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Notification(Base):
    """One message to one destination, waiting, being sent, delivered or given up on."""

    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    # "email", or the webhook's URL: the dispatcher finds its current settings by this.
    target: Mapped[str] = mapped_column(Text, nullable=False)
    # What the message is about ("voicemail:<call id>", "callback_task:<task id>"): with
    # channel and target unique, so a replayed call-log batch cannot enqueue it twice.
    dedupe_key: Mapped[str] = mapped_column(Text, nullable=False)
    call_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'pending'"))
    # Incremented when a dispatcher claims the row; also the claim's token.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # pending: when to try; sending: when the lease runs out.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(NOTIFICATION_KINDS)})", name="kind"),
        CheckConstraint(f"channel IN ({_in(NOTIFICATION_CHANNELS)})", name="channel"),
        CheckConstraint(f"status IN ({_in(NOTIFICATION_STATUSES)})", name="status"),
        UniqueConstraint("dedupe_key", "channel", "target"),
        # The dispatcher's claim scans only what is still to be sent.
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text(DUE_STATUSES_SQL),
        ),
        Index("ix_notifications_task_id", "task_id"),
        Index("ix_notifications_created_at", "created_at"),
    )
