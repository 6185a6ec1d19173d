"""End to end: calls logged → outbox → a real SMTP server and a real webhook receiver."""

from __future__ import annotations

import io
import uuid

import pytest

from pbx_service.audio.tools import audio_segment
from pbx_service.notify.audio import FetchAudio
from tests.integration.notify.conftest import DispatcherFactory, SettingsFactory
from tests.integration.notify.support import (
    MailSink,
    WebhookReceiver,
    abandoned_call,
    log_calls,
    until,
    voicemail_call,
    wait_status,
    wav_tone,
)

CONTENT_TYPES = {"mp3": "audio/mpeg", "ogg": "audio/ogg"}


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
async def test_voicemail_email_arrives_with_the_recording_attached(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
    fmt: str,
) -> None:
    sink, _port = smtp
    settings = make_settings(email={"attach_format": fmt}, with_webhook=False)
    asked: list[str] = []

    async def fetch(name: str) -> bytes | None:
        asked.append(name)
        return wav_tone(1.0)

    call = voicemail_call()
    assert await log_calls(database_url, settings, call) == 1
    await start_dispatcher(settings, fetch_audio=fetch)
    await until(lambda: len(sink.messages) == 1, what="the e-mail")

    [message] = sink.messages
    assert message["Subject"] == "Voicemail from Иван Петров +7 916 123-45-67 (website)"
    assert message["To"] == "sales@example.com, boss@example.com"
    assert asked == [call.voicemail]
    [row] = await wait_status(database_url, "delivered")
    assert message["Message-ID"] == f"<{row['id']}@example.com>"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Called at:     2026-11-25 14:03:00 MSK" in text
    assert f"Voicemail:     42 s, attached as voicemail-+79161234567-20261125-110300.{fmt}" in text
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == CONTENT_TYPES[fmt]
    audio = part.get_content()
    assert isinstance(audio, bytes)
    segment = audio_segment().from_file(io.BytesIO(audio), format=fmt)
    assert 0.9 <= segment.duration_seconds <= 1.2
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["delivered_at"] is not None and row["last_error"] is None


async def test_webhook_is_signed_and_carries_the_payload(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    settings = make_settings(with_email=False)
    call = voicemail_call()
    await log_calls(database_url, settings, call)
    await start_dispatcher(settings)
    await until(lambda: len(receiver.processed) == 1, what="the webhook")

    [hit] = receiver.hits
    [row] = await wait_status(database_url, "delivered")
    assert receiver.bad_signatures == 0
    assert hit.delivery == str(row["id"]) and hit.event == "voicemail" and hit.attempt == 1
    assert hit.body["id"] == str(row["id"]) and hit.body["event"] == "voicemail"
    data = hit.body["data"]
    assert data["call_id"] == str(call.id)
    assert data["caller"]["name"] == "Иван Петров"
    assert data["voicemail"] == {"name": call.voicemail, "seconds": 42.0}
    assert data["task"]["new"] is True


async def test_a_wrong_secret_is_refused_by_the_receiver_and_never_delivered(
    database_url: str,
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    # The receiver's check is real: a different secret gives 401, a permanent failure.
    settings = make_settings(with_email=False, webhook={"secret": "another-secret-0123456789"})
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    await until(lambda: receiver.bad_signatures == 1)
    await wait_status(database_url, "failed")
    assert not receiver.processed


async def test_a_missing_recording_still_sends_the_email_and_says_so(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings(with_webhook=False)

    async def gone(name: str) -> bytes | None:
        return None

    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings, fetch_audio=gone)
    await until(lambda: len(sink.messages) == 1)
    [message] = sink.messages
    assert list(message.iter_attachments()) == []
    body = message.get_body(("plain",))
    assert body is not None
    assert "Note:          the recording was not found on the PBX" in body.get_content()


async def test_a_recording_over_the_limit_is_named_not_attached(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings(email={"max_attachment_mb": 0.001}, with_webhook=False)
    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings)
    await until(lambda: len(sink.messages) == 1)
    body = sink.messages[0].get_body(("plain",))
    assert body is not None
    assert "attachment limit" in body.get_content()
    assert list(sink.messages[0].iter_attachments()) == []


async def test_fetch_failure_is_retried_then_attached(
    database_url: str,
    smtp: tuple[MailSink, int],
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings(with_webhook=False)
    calls = 0

    async def flaky(name: str) -> bytes | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("ARI unreachable")
        return wav_tone(0.5)

    await log_calls(database_url, settings, voicemail_call())
    await start_dispatcher(settings, fetch_audio=flaky)
    await until(lambda: len(sink.messages) == 1)
    assert calls == 2
    assert [p.get_content_type() for p in sink.messages[0].iter_attachments()] == ["audio/mpeg"]
    [row] = await wait_status(database_url, "delivered")
    assert row["attempts"] == 2


async def test_callback_task_without_voicemail_goes_to_both_channels(
    database_url: str,
    smtp: tuple[MailSink, int],
    receiver: WebhookReceiver,
    make_settings: SettingsFactory,
    start_dispatcher: DispatcherFactory,
) -> None:
    sink, _port = smtp
    settings = make_settings()
    fetched: list[str] = []

    async def fetch(name: str) -> bytes | None:
        fetched.append(name)
        return None

    fetch_audio: FetchAudio = fetch
    await log_calls(database_url, settings, abandoned_call())
    await start_dispatcher(settings, fetch_audio=fetch_audio)
    await until(lambda: len(sink.messages) == 1 and len(receiver.processed) == 1)
    assert sink.messages[0]["Subject"] == (
        "Call back Иван Петров +7 916 123-45-67 (website): hung up before anyone answered"
    )
    assert receiver.hits[0].event == "callback_task"
    assert fetched == []  # nothing to attach
    assert uuid.UUID(receiver.hits[0].body["data"]["task"]["id"])
