"""Caller numbers: normalise to E.164 so one customer matches however the network spelled it."""

from __future__ import annotations

import phonenumbers

# Caller-ID strings are untrusted: keep what we store bounded and printable.
MAX_CALLER_NAME = 200


def to_e164(raw: str | None, default_region: str = "RU") -> str | None:
    """Return the number in E.164 (``+74951234567``) when it parses as a possible number,
    the cleaned original otherwise, and None for an empty or anonymous caller ID.

    Russian trunks deliver the same caller as "84951234567", "74951234567" or "+7 495 ...";
    all three become "+74951234567".
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text or text.lower() in {"anonymous", "unknown", "restricted", "private"}:
        return None
    candidate = text
    digits = "".join(ch for ch in text if ch.isdigit())
    if default_region == "RU" and not text.startswith("+") and len(digits) == 11:
        # Domestic "8 495 ..." and international-without-plus "7 495 ..." forms.
        if digits[0] in "78":
            candidate = "+7" + digits[1:]
    try:
        parsed = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException:
        return clean_text(text, 64)
    if phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return clean_text(text, 64)


def clean_text(value: str | None, limit: int = MAX_CALLER_NAME) -> str | None:
    """Drop control characters (PostgreSQL rejects NUL) and bound the length."""
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable() or ch == " ").strip()
    return cleaned[:limit] or None
