"""Webhook signatures: HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

import pytest

from pbx_service.notify.signing import sign, verify_signature

SECRET = "0123456789abcdef-secret"
BODY = b'{"id":"x"}'
# `printf '{"id":"x"}' | openssl dgst -sha256 -hmac "0123456789abcdef-secret"`
EXPECTED = "sha256=88c5c8feb7367c4a5fa1138d09a7d83eeac2e30959abe0f7bb0ba9d781e69882"


def test_signature_matches_openssl() -> None:
    assert sign(BODY, SECRET) == EXPECTED


def test_signature_verifies() -> None:
    assert verify_signature(BODY, SECRET, EXPECTED)


@pytest.mark.parametrize(
    ("body", "secret", "header"),
    [
        (b'{"id":"y"}', SECRET, EXPECTED),  # body changed
        (BODY, SECRET + "!", EXPECTED),  # another secret
        (BODY, SECRET, EXPECTED.removeprefix("sha256=")),  # no scheme
        (BODY, SECRET, "sha1=" + EXPECTED[7:]),
        (BODY, SECRET, EXPECTED[:-1] + "0"),
        (BODY, SECRET, ""),
        (BODY, SECRET, None),
    ],
)
def test_anything_else_does_not_verify(body: bytes, secret: str, header: str | None) -> None:
    assert not verify_signature(body, secret, header)


def test_signature_covers_non_ascii_secret_and_body() -> None:
    body = '{"name":"Иван Петров"}'.encode()
    header = sign(body, "секретный-ключ-1234")
    assert verify_signature(body, "секретный-ключ-1234", header)
    assert not verify_signature(body, "секретный-ключ-1235", header)
