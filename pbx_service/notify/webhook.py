"""Posting signed notifications to webhooks (aiohttp)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from pbx_service.config.notify import WebhookSettings
from pbx_service.notify.errors import DeliveryError, PermanentDeliveryError
from pbx_service.notify.render import webhook_body
from pbx_service.notify.signing import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    sign,
)

# Statuses that say "not now" rather than "never".
RETRYABLE_STATUSES = frozenset({408, 425, 429})
_EXCERPT = 200
_MAX_RETRY_AFTER = 3600.0


class WebhookRetryLater(DeliveryError):
    """The receiver asked to retry later; ``retry_after`` is its Retry-After in seconds."""

    error_id = "notify-delivery-failed"

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def redact_url(url: str) -> str:
    """``url`` fit for logs and ``last_error``: a query string often carries a token."""
    parts = urlsplit(url)
    if not parts.query and not parts.fragment:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "…" if parts.query else "", ""))


def classify(status: int) -> str:
    """``delivered``, ``retry`` or ``failed`` for an HTTP status (redirects are not followed:
    a moved receiver is a configuration to fix, not something to guess)."""
    if 200 <= status < 300:
        return "delivered"
    if status >= 500 or status in RETRYABLE_STATUSES:
        return "retry"
    return "failed"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: the backoff will do
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def signed_request(
    hook: WebhookSettings,
    notification_id: uuid.UUID,
    kind: str,
    created_at: datetime,
    payload: dict[str, Any],
    attempt: int,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one POST; the body is the same bytes on every attempt."""
    body = webhook_body(notification_id, kind, created_at, payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pbx-service-notify",
        SIGNATURE_HEADER: sign(body, hook.secret.get_secret_value()),
        EVENT_HEADER: kind,
        DELIVERY_HEADER: str(notification_id),
        ATTEMPT_HEADER: str(attempt),
    }
    return body, headers


async def post(
    session: aiohttp.ClientSession, hook: WebhookSettings, body: bytes, headers: dict[str, str]
) -> int:
    """POST once; returns the 2xx status or raises `DeliveryError` (retry) or
    `PermanentDeliveryError` (give up)."""
    shown = redact_url(hook.url)
    try:
        async with session.post(
            hook.url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=hook.timeout),
            allow_redirects=False,
        ) as response:
            status = response.status
            excerpt = ""
            if not 200 <= status < 300:
                text = (await response.content.read(_EXCERPT)).decode("utf-8", "replace")
                excerpt = (": " + " ".join(text.split())) if text.strip() else ""
            retry_after = _retry_after(response.headers.get("Retry-After"))
    except TimeoutError as exc:
        raise DeliveryError(f"POST {shown}: no answer within {hook.timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"POST {shown}: {type(exc).__name__}: {exc}") from exc
    verdict = classify(status)
    if verdict == "delivered":
        return status
    message = f"POST {shown} -> HTTP {status}{excerpt}"
    if verdict == "retry":
        raise WebhookRetryLater(message, retry_after)
    raise PermanentDeliveryError(message)
