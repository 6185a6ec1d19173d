"""AriClient construction: URL handling and argument checks (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from pbx_service.ari import AriClient, AriUsageError


@pytest.mark.parametrize(
    ("url", "rest_base", "ws_url"),
    [
        (
            "http://127.0.0.1:8088/ari",
            "http://127.0.0.1:8088/ari",
            "ws://127.0.0.1:8088/ari/events",
        ),
        (
            "http://127.0.0.1:8088/ari/",
            "http://127.0.0.1:8088/ari",
            "ws://127.0.0.1:8088/ari/events",
        ),
        ("http://127.0.0.1:8088", "http://127.0.0.1:8088/ari", "ws://127.0.0.1:8088/ari/events"),
        (
            "https://pbx.example:8089/asterisk/ari",
            "https://pbx.example:8089/asterisk/ari",
            "wss://pbx.example:8089/asterisk/ari/events",
        ),
        (
            "https://pbx.example:8089/asterisk",
            "https://pbx.example:8089/asterisk/ari",
            "wss://pbx.example:8089/asterisk/ari/events",
        ),
    ],
)
def test_urls(url: str, rest_base: str, ws_url: str) -> None:
    client = AriClient(url, "u", "p", "pbx-service")
    assert str(client._base) == rest_base
    assert str(client._ws_url) == ws_url
    assert client._ws_params == {"app": "pbx-service"}


def test_subscribe_all_param() -> None:
    client = AriClient("http://127.0.0.1:8088/ari", "u", "p", "app", subscribe_all=True)
    assert client._ws_params == {"app": "app", "subscribeAll": "true"}


def test_auth_header_and_repr_hide_the_password() -> None:
    client = AriClient("http://127.0.0.1:8088/ari", "ari", "ari-secret", "app")
    assert client._auth_header == "Basic YXJpOmFyaS1zZWNyZXQ="
    assert "ari-secret" not in repr(client) and "YXJp" not in repr(client)
    assert not client.connected and client.connect_count == 0


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("http://ari:pw@127.0.0.1:8088/ari", {}, "must not carry credentials"),
        ("ftp://127.0.0.1/ari", {}, "http"),
        ("127.0.0.1:8088", {}, "http"),
        ("http://127.0.0.1:8088/ari?api_key=x", {}, "query"),
        ("http://127.0.0.1:8088/ari", {"ping_interval": 0}, "ping_interval"),
        ("http://127.0.0.1:8088/ari", {"ping_timeout": -1}, "ping_timeout"),
        ("http://127.0.0.1:8088/ari", {"reconnect_max_delay": 0}, "reconnect_max_delay"),
    ],
)
def test_bad_configuration_is_refused_clearly(url: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(AriUsageError, match=match) as info:
        AriClient(url, "ari", "pw", "app", **kwargs)
    assert "pw@" not in str(info.value)


def test_app_and_username_are_checked() -> None:
    with pytest.raises(AriUsageError, match="one Stasis application"):
        AriClient("http://127.0.0.1:8088/ari", "u", "p", "")
    with pytest.raises(AriUsageError, match="one Stasis application"):
        AriClient("http://127.0.0.1:8088/ari", "u", "p", "a,b")
    with pytest.raises(AriUsageError, match="username"):
        AriClient("http://127.0.0.1:8088/ari", "", "p", "a")


def test_backoff_is_capped_exponential_with_jitter() -> None:
    client = AriClient(
        "http://127.0.0.1:8088/ari",
        "u",
        "p",
        "a",
        reconnect_initial_delay=0.5,
        reconnect_max_delay=10.0,
    )
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0]):
        for _ in range(50):
            assert base * 0.75 <= client._backoff(attempt) <= base * 1.25
    assert all(client._backoff(a) <= 10.0 for a in range(5, 100))
    assert min(client._backoff(40) for _ in range(50)) >= 7.5
