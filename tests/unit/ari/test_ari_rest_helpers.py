"""Pure parts of the REST layer: path encoding, query values, media lists, error bodies."""

from __future__ import annotations

import pytest

from pbx_service.ari import AriUsageError
from pbx_service.ari.rest import _error_message, _join_media, _query, seg


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("1795611322.117", "1795611322.117"),
        ("voicemail/400/msg-1795611357-a", "voicemail%2F400%2Fmsg-1795611357-a"),
        ("Stasis:pbx-callbacks", "Stasis:pbx-callbacks"),
        ("a b?c#d&e", "a%20b%3Fc%23d%26e"),
        ("..", ".."),
        ("Клиент", "%D0%9A%D0%BB%D0%B8%D0%B5%D0%BD%D1%82"),
        ("100%", "100%25"),
    ],
)
def test_seg_encodes_one_path_segment(raw: str, encoded: str) -> None:
    assert seg(raw) == encoded


def test_seg_refuses_empty_id() -> None:
    with pytest.raises(AriUsageError, match="non-empty"):
        seg("")


def test_query_booleans_numbers_and_none() -> None:
    assert _query({"beep": True, "x": False, "n": 5, "s": "a", "skip": None, "f": 1.5}) == {
        "beep": "true",
        "x": "false",
        "n": "5",
        "s": "a",
        "f": "1.5",
    }


def test_join_media() -> None:
    assert _join_media("sound:hello-world") == "sound:hello-world"
    assert _join_media(["sound:a", "digits:123"]) == "sound:a,digits:123"
    assert _join_media(("number:42",)) == "number:42"
    for bad in ([], "", ["sound:a", ""]):
        with pytest.raises(AriUsageError, match="media"):
            _join_media(bad)


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (b'{"message": "Channel not found"}', "Not Found", "Channel not found"),
        (b'{"error": "Allocation failed"}', "Internal Server Error", "Allocation failed"),
        (b"", "Conflict", "Conflict"),
        (b"plain text failure", "Bad", "plain text failure"),
        (b'{"other": 1}', "Bad Request", "Bad Request"),
        (b"[1]", None, ""),
    ],
)
def test_error_message(body: bytes, reason: str | None, message: str) -> None:
    assert _error_message(body, reason) == message
