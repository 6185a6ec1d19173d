"""Webhook signatures: ``X-PBX-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

Receivers compute the HMAC of the exact bytes they received with the shared secret and compare
in constant time (`verify_signature` does so, for receivers written in Python and for tests)::

    body = await request.read()                      # the raw bytes, before any JSON parsing
    if not verify_signature(body, SECRET, request.headers.get("X-PBX-Signature")):
        return web.Response(status=401)              # 4xx: the sender gives up on it
    if request.headers["X-PBX-Delivery"] in seen:    # a resend after a crash: already done
        return web.Response(status=200)

Answer 2xx once the notification is stored; 408, 429 (with Retry-After) and 5xx make the
sender retry later with the same ``X-PBX-Delivery``; any other status ends its attempts.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-PBX-Signature"
EVENT_HEADER = "X-PBX-Event"
DELIVERY_HEADER = "X-PBX-Delivery"
ATTEMPT_HEADER = "X-PBX-Attempt"
_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The ``X-PBX-Signature`` value for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    if not header or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret), header.strip())
