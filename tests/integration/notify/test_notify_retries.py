"""Failures: refused or slow destinations are retried with backoff until they recover; a
permanent refusal or too many attempts end as failed, with the reason stored."""

from __future__ import annotations

import itertools

import pytest

from pbx_service.notify.testing import InMemoryMailer
from tests.integration.notify.conftest import DispatcherFactory, SettingsFactory
from tests.integration.notify.support import (
    MailSink,
    WebhookReceiver,
    log_calls,
    until,
    voicemail_call,
    wait_status,
)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_smtp_refusal_is_retried_with_backoff_then_delivered(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    sink.refuse = 3
    settings = make_settings(with_webhook=False)
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "delivered")
    assert len(sink.messages) == 1 and len(sink.attempts) == 4
    assert row["attempts"] == 4
    # 50 ms, 100 ms, 200 ms (capped); generous upper bounds for a loaded machine.
    waits = gaps(sink.attempts)
    for wait, planned in zip(waits, [0.05, 0.1, 0.2], strict=True):
        assert planned * 0.9 <= wait <= planned + 1.0, waits


async def test_smtp_refusal_gives_up_after_max_attempts(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, _port = smtp
    sink.refuse = 100
    settings = make_settings(email={"max_attempts": 3}, with_webhook=False)
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "failed")
    assert row["attempts"] == 3 and len(sink.attempts) == 3 and not sink.messages
    assert "gave up after 3 attempts" in row["last_error"]
    assert "550 5.7.1 Mailbox unavailable" in row["last_error"]
    assert any(r.levelname == "ERROR" and str(row["id"]) in r.getMessage() for r in caplog.records)


async def test_unreachable_smtp_server_is_retried(
    database_url: str,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    # Port 1 on loopback: connection refused.
    settings = make_settings(email={"port": 1, "max_attempts": 2}, with_webhook=False)
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "failed")
    assert row["attempts"] == 2 and "SMTP 127.0.0.1:1" in row["last_error"]


@pytest.mark.parametrize(
    "failures",
    [
        [500, 503],
        [("hang", 2.0)],  # the receiver is slower than the 0.5 s timeout
        [429, 408],
    ],
    ids=["5xx", "timeout", "429-408"],
)
async def test_webhook_is_retried_until_it_recovers(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
    failures: list[int | tuple[str, float]],
) -> None:
    receiver.plan = list(failures)
    settings = make_settings(with_email=False)
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "delivered")
    assert row["attempts"] == len(failures) + 1
    assert [hit.attempt for hit in receiver.hits] == list(range(1, len(failures) + 2))
    assert len({hit.delivery for hit in receiver.hits}) == 1  # the same delivery id each time
    assert receiver.processed == {str(row["id"]): 1}


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_webhook_4xx_fails_at_once(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
    status: int,
) -> None:
    receiver.plan = [status]
    settings = make_settings(with_email=False)
    await log_calls(database_url, settings, voicemail_call())
    dispatcher = await start_dispatcher(settings)
    [row] = await wait_status(database_url, "failed")
    assert row["attempts"] == 1 and len(receiver.hits) == 1
    assert f"HTTP {status}: planned {status}" in row["last_error"]
    assert dispatcher.stats["failed"] == 1 and dispatcher.stats["retried"] == 0


async def test_webhook_retry_after_is_respected(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    receiver.plan = [("retry-after", 1.0)]
    settings = make_settings(with_email=False)  # its own backoff would be 50 ms
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    await wait_status(database_url, "delivered")
    first, second = receiver.hits
    assert first.status == 503 and second.status == 200
    assert second.at - first.at >= 0.95


async def test_one_destination_failing_does_not_hold_back_the_other(
    database_url: str,
    smtp: tuple[MailSink, int],
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    receiver.plan = [500] * 100
    settings = make_settings(webhook={"max_attempts": 50})
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    await until(lambda: len(sink.messages) == 1, what="the e-mail despite the webhook")
    assert not receiver.processed


async def test_the_shipped_in_memory_mailer_stands_in_for_smtp(
    database_url: str,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    mailer = InMemoryMailer(refuse=1)
    settings = make_settings(with_webhook=False)
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings, mailer=mailer)
    [row] = await wait_status(database_url, "delivered")
    assert mailer.refused == 1 and row["attempts"] == 2
    [message] = mailer.messages
    assert message["Message-ID"] == f"<{row['id']}@example.com>"


async def test_starttls_is_never_silently_skipped(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    # The test server offers no STARTTLS: the password must not go out in plain text.
    sink, _port = smtp
    settings = make_settings(
        email={"security": "starttls", "username": "pbx", "password": "pw", "max_attempts": 1},
        with_webhook=False,
    )
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    [row] = await wait_status(database_url, "failed")
    assert "STARTTLS" in row["last_error"] and not sink.messages and not sink.attempts
