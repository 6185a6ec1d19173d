"""Whatever a caller ID or the directory holds, the e-mail is one well-formed message."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_service.config.notify import EmailSettings
from pbx_service.notify.render import build_email, one_line, subject

# Payload text comes out of jsonb: any Unicode but lone surrogates and NUL.
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
EMAIL = EmailSettings.model_validate(
    {"host": "127.0.0.1", "from": "pbx@example.com", "to": ["a@example.com"]}
)
HEADERS = {
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "X-PBX-Event",
    "X-PBX-Delivery",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
}


@settings(max_examples=60, deadline=None)
@given(name=TEXT, company=TEXT, label=TEXT, number=TEXT, menu=st.lists(TEXT, max_size=3))
def test_any_text_makes_one_well_formed_message(
    name: str, company: str, label: str, number: str, menu: list[str]
) -> None:
    payload = {
        "caller": {"number": number, "name": name, "company": company, "tier": "A"},
        "line": {"did": "74951234567", "label": label},
        "menu_path": menu,
        "outcome": "voicemail",
        "voicemail": {"name": "voicemail/x", "seconds": 3.0},
    }
    message = build_email(
        uuid.uuid4(), "voicemail", payload, datetime.now(UTC), EMAIL, tz=ZoneInfo("UTC")
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert set(parsed.keys()) <= HEADERS
    # Compared without spaces: the stdlib's RFC 2047 parser may drop one next to an
    # encoded word; what matters is that nothing else changed.
    assert parsed["Subject"].replace(" ", "") == subject("voicemail", payload).replace(" ", "")
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]


@given(TEXT, st.integers(min_value=2, max_value=200))
def test_one_line_is_one_bounded_line(text: str, limit: int) -> None:
    line = one_line(text, limit)
    assert len(line) <= limit
    assert not any(ch in line for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
