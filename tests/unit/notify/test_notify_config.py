"""The notify: section of the config: defaults, and errors that say what to fix."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pbx_service.config import Config, ConfigError, parse_config
from pbx_service.config.notify import NotifySettings
from pbx_service.notify.outbox import Destination, destinations
from pbx_service.notify.webhook import classify, redact_url

SECRET = "0123456789abcdef0123"
EXAMPLE = """
email:
  host: smtp.example.com
  username: pbx@example.com
  password: hunter2
  from: "АТС <pbx@example.com>"
  to: sales@example.com
  attach_format: ogg
webhooks:
  - url: https://crm.example.com/hooks/pbx
    secret: 0123456789abcdef0123
    events: voicemail
timezone: Europe/Moscow
"""


def settings(data: dict[str, Any]) -> NotifySettings:
    return NotifySettings.model_validate(data)


def problem(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        settings(data)
    [error] = info.value.errors()
    where = ".".join(str(p) for p in error["loc"])
    return where, error["msg"]


def test_the_documented_example_parses() -> None:
    notify = settings(yaml.safe_load(EXAMPLE))
    assert notify.email is not None and notify.email.smtp_port == 587
    assert notify.email.to == ["sales@example.com"] and notify.email.attach_format == "ogg"
    assert notify.email.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(notify) and SECRET not in repr(notify)
    assert notify.webhooks[0].events == ["voicemail"]
    assert destinations(notify) == (
        Destination("email", "email", frozenset({"voicemail", "callback_task"})),
        Destination("webhook", "https://crm.example.com/hooks/pbx", frozenset({"voicemail"})),
    )


def test_nothing_configured_means_disabled() -> None:
    assert not settings({}).enabled
    assert destinations(settings({})) == ()


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_default_port_follows_security(security: str, port: int) -> None:
    email = {"host": "h", "from": "a@b.c", "to": ["d@e.f"], "security": security}
    notify = settings({"email": email})
    assert notify.email is not None and notify.email.smtp_port == port


EMAIL = {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]}
HOOK = {"url": "https://crm.example.com/h", "secret": SECRET}


@pytest.mark.parametrize(
    ("data", "where", "hint"),
    [
        ({"webhooks": [{**HOOK, "secret": "short"}]}, "webhooks.0.secret", "openssl rand"),
        ({"webhooks": [{**HOOK, "url": "ftp://x"}]}, "webhooks.0.url", "http(s) URL"),
        (
            {"webhooks": [{**HOOK, "url": "https://u:p@crm.example.com/h"}]},
            "webhooks.0.url",
            "credentials",
        ),
        ({"webhooks": [{**HOOK, "events": ["voicemail", "sms"]}]}, "webhooks.0.events.1", ""),
        (
            {"webhooks": [{**HOOK, "events": ["voicemail", "voicemail"]}]},
            "webhooks.0.events",
            "twice",
        ),
        ({"webhooks": [HOOK, HOOK]}, "", "listed twice"),
        ({"email": {**EMAIL, "to": ["not-an-address"]}}, "email.to", "user@example.com"),
        ({"email": {**EMAIL, "from": "@example.com"}}, "email.from", "e-mail address"),
        ({"email": {**EMAIL, "password": "x"}}, "email", "no username"),
        ({"email": {**EMAIL, "attach_format": "wav"}}, "email.attach_format", ""),
        ({"email": {**EMAIL, "smtp": "x"}}, "email.smtp", "Extra"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Europe/Moscow"),
        ({"retry_initial_seconds": 60, "retry_max_seconds": 10}, "", "retry_max_seconds"),
        ({"lease_seconds": 5, "webhooks": [{**HOOK, "timeout": 10}]}, "", "sent twice"),
    ],
)
def test_mistakes_name_the_key_and_the_fix(data: dict[str, Any], where: str, hint: str) -> None:
    found_where, message = problem(data)
    assert found_where == where
    assert hint in message


def test_one_recipient_or_event_may_be_written_without_a_list() -> None:
    notify = settings({"email": {**EMAIL, "to": "x@example.com", "events": "callback_task"}})
    assert notify.email is not None
    assert notify.email.to == ["x@example.com"] and notify.email.events == ["callback_task"]


def test_settings_are_frozen() -> None:
    notify = settings({"webhooks": [HOOK]})
    with pytest.raises(ValidationError):
        notify.webhooks[0].timeout = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (301, "failed"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (408, "retry"),
        (410, "failed"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_http_status_verdicts(status: int, verdict: str) -> None:
    assert classify(status) == verdict


def test_urls_in_logs_lose_their_query_string() -> None:
    assert redact_url("https://crm.example.com/h?token=s3cret#x") == "https://crm.example.com/h?…"
    assert redact_url("https://crm.example.com/h") == "https://crm.example.com/h"


@pytest.mark.skipif(
    "notify" not in Config.model_fields,
    reason="Config has no notify: section yet: the lead adds "
    "`notify: NotifySettings = Field(default_factory=NotifySettings)` (see the notify report)",
)
def test_the_whole_config_carries_the_notify_section() -> None:
    text = "lines: [{did: '74951234567', label: website}]\n"
    text += "teams: {reception: {members: [PJSIP/101]}}\n"
    text += "notify:\n" + "".join(f"  {line}\n" for line in EXAMPLE.strip().splitlines())
    config = parse_config(text)
    notify = config.notify  # type: ignore[attr-defined, unused-ignore]
    assert isinstance(notify, NotifySettings) and notify.enabled
    with pytest.raises(ConfigError, match=r"notify\.webhooks\[0\]\.secret: .*openssl rand"):
        parse_config(text.replace(SECRET, "short"))
