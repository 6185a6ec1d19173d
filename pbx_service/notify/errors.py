"""Errors of the notification package.

The tree (every class carries a stable kebab-case ``error_id``)::

    PbxError                      pbx_service.errors
    └── NotifyError               notify-error: root of everything this package raises
        ├── DispatcherStateError  notify-dispatcher-state: started twice, used after close
        └── DeliveryError         notify-delivery-failed: one attempt to send failed
            └── PermanentDeliveryError  notify-delivery-refused: retrying cannot help

aiosmtplib, aiohttp and asyncpg exceptions are translated at the edge with ``raise ... from``.
A `DeliveryError` never escapes the dispatcher: it becomes a retry or a failed row, logged.
"""

from __future__ import annotations

from pbx_service.errors import PbxError


class NotifyError(PbxError):
    """Root of every error raised by the notification package."""

    error_id = "notify-error"


class DispatcherStateError(NotifyError):
    """The dispatcher was used in a state that does not allow it."""

    error_id = "notify-dispatcher-state"


class DeliveryError(NotifyError):
    """One attempt to deliver a notification failed; another may succeed."""

    error_id = "notify-delivery-failed"


class PermanentDeliveryError(DeliveryError):
    """The destination refused the notification for good (e.g. HTTP 400, 404, 410)."""

    error_id = "notify-delivery-refused"
