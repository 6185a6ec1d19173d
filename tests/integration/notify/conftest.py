"""Fixtures: a real SMTP server, a real webhook receiver, and dispatchers closed after the
test. Retries are fast here (50 ms, doubling, capped at 200 ms) so backoff tests take
fractions of a second."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pbx_service.config.notify import NotifySettings
from pbx_service.notify.audio import FetchAudio
from pbx_service.notify.dispatcher import NotificationDispatcher
from tests.integration.notify.support import (
    MailSink,
    WebhookReceiver,
    start_receiver,
    start_smtp,
    wav_tone,
)

SettingsFactory = Callable[..., NotifySettings]
DispatcherFactory = Callable[..., Awaitable[NotificationDispatcher]]


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[MailSink, int]]:
    sink = MailSink()
    server, port = await start_smtp(sink)
    try:
        yield sink, port
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    runner = await start_receiver(hook)
    try:
        yield hook
    finally:
        await runner.cleanup()


@pytest.fixture
def make_settings(smtp: tuple[MailSink, int], receiver: WebhookReceiver) -> SettingsFactory:
    """``make_settings(email={...overrides} | None, webhook={...} | None, **top_level)``."""
    _sink, port = smtp

    def build(
        *,
        email: dict[str, Any] | None = None,
        webhook: dict[str, Any] | None = None,
        with_email: bool = True,
        with_webhook: bool = True,
        **top: Any,
    ) -> NotifySettings:
        data: dict[str, Any] = {
            "retry_initial_seconds": 0.05,
            "retry_max_seconds": 0.2,
            "lease_seconds": 2.0,
            "timezone": "Europe/Moscow",
        }
        if with_email:
            data["email"] = {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from": "АТС <pbx@example.com>",
                "to": ["sales@example.com", "boss@example.com"],
                "timeout": 1.5,
                **(email or {}),
            }
        if with_webhook:
            data["webhooks"] = [
                {"url": receiver.url, "secret": receiver.secret, "timeout": 0.5, **(webhook or {})}
            ]
        data.update(top)
        return NotifySettings.model_validate(data)

    return build


async def _fetch_tone(name: str) -> bytes | None:
    return wav_tone()


@pytest.fixture
async def start_dispatcher(database_url: str) -> AsyncIterator[DispatcherFactory]:
    """``await start_dispatcher(settings, fetch_audio=..., **kwargs)``: started now, closed
    after the test."""
    started: list[NotificationDispatcher] = []

    async def start(
        settings: NotifySettings, *, fetch_audio: FetchAudio | None = _fetch_tone, **kwargs: Any
    ) -> NotificationDispatcher:
        kwargs.setdefault("poll_interval", 0.05)
        kwargs.setdefault("close_grace_seconds", 0.5)
        dispatcher = NotificationDispatcher(
            database_url, settings, fetch_audio=fetch_audio, **kwargs
        )
        await dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    try:
        yield start
    finally:
        for dispatcher in started:
            await dispatcher.close()
