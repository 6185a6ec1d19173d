"""Real servers for the notification tests (an SMTP server on aiosmtpd, a webhook receiver on
aiohttp, both on 127.0.0.1 with port 0 in the test's own event loop), a WAV maker, and
`log_calls`, which writes calls exactly as the call-log writer's transaction does."""

from __future__ import annotations

import array
import asyncio
import email
import email.policy
import io
import math
import time
import uuid
import wave
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson
from aiohttp import web
from aiosmtpd.smtp import SMTP

from pbx_service.config.notify import NotifySettings
from pbx_service.notify.outbox import CallerLookup, enqueue_for_calls, lookup_contacts
from pbx_service.notify.signing import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
)
from pbx_service.store.callbacks import apply_callbacks
from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.records import CallRecord, Outcome
from pbx_service.store.rows import snapshot
from pbx_service.store.writer import INSERT_EVENT_SQL, UPSERT_CALL_SQL

SECRET = "test-secret-0123456789"
T0 = datetime(2026, 11, 25, 11, 3, tzinfo=UTC)


def wav_tone(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A 440 Hz sine as a 16-bit mono WAV file's bytes."""
    samples = array.array(
        "h",
        (round(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))),
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Wait until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- SMTP


@dataclass
class MailSink:
    """aiosmtpd handler: keeps every accepted message; refuses the next ``refuse`` ones."""

    refuse: int = 0
    refuse_reply: str = "550 5.7.1 Mailbox unavailable"
    messages: list[EmailMessage] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts.append(time.monotonic())
        if self.refuse > 0:
            self.refuse -= 1
            return self.refuse_reply
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 2.0.0 OK"

    def by_message_id(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.messages)


async def start_smtp(sink: MailSink) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="smtp.test", loop=loop), "127.0.0.1", 0
    )
    port: int = server.sockets[0].getsockname()[1]
    return server, port


# ----------------------------------------------------------------------------- webhooks


@dataclass
class Hit:
    delivery: str
    event: str
    attempt: int
    body: dict[str, Any]
    status: int
    at: float


@dataclass
class WebhookReceiver:
    """Answers each POST with the next planned reply (default 200): an HTTP status, or
    ``("hang", seconds)`` to sleep before answering 200, ``("retry-after", seconds)`` for a
    503 with that Retry-After, or ``("ack-hang", seconds)`` to count
    the delivery as processed and then hang (a response lost to a crash). Requests with a bad
    signature get 401 and are kept apart."""

    secret: str = SECRET
    plan: list[int | tuple[str, float]] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    processed: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(body, self.secret, request.headers.get(SIGNATURE_HEADER)):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        parsed = orjson.loads(body)
        delivery = request.headers[DELIVERY_HEADER]
        action = self.plan.pop(0) if self.plan else 200
        hit = Hit(
            delivery=delivery,
            event=request.headers[EVENT_HEADER],
            attempt=int(request.headers[ATTEMPT_HEADER]),
            body=parsed,
            status=action if isinstance(action, int) else 200,
            at=time.monotonic(),
        )
        self.hits.append(hit)
        if isinstance(action, tuple) and action[0] == "retry-after":
            hit.status = 503
            return web.Response(status=503, headers={"Retry-After": f"{action[1]:g}"})
        if isinstance(action, tuple):
            kind, seconds = action
            if kind == "ack-hang":
                self.processed[delivery] += 1
            await asyncio.sleep(seconds)
            if kind == "ack-hang":
                return web.Response(status=200)
        elif not 200 <= action < 300:
            return web.Response(status=action, text=f"planned {action}")
        self.processed[delivery] += 1
        return web.Response(status=200, text="ok")


async def start_receiver(receiver: WebhookReceiver) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    port: int = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    return runner


# ----------------------------------------------------------------------------- calls


def voicemail_call(n: int = 0, **overrides: Any) -> CallRecord:
    """An ended call that left a 42-second voicemail."""
    call_id = overrides.pop("id", uuid.uuid4())
    fields: dict[str, Any] = {
        "id": call_id,
        "channel_id": f"chan-{n}",
        "started_at": T0 + timedelta(minutes=n),
        "did": "74951234567",
        "line_label": "website",
        "listed": True,
        "caller_number": "+79161234567",
        "caller_name": "Иван Петров",
        "ended_at": T0 + timedelta(minutes=n, seconds=95),
        "outcome": Outcome.VOICEMAIL,
        "voicemail": f"voicemail/74951234567/{call_id}",
        "wait_seconds": 35.0,
        "menu_path": ["sales"],
        "category": "sales",
    }
    fields.update(overrides)
    call = CallRecord(**fields)
    if call.voicemail:
        call.add_event(call.started_at, "voicemail", name=call.voicemail, seconds=42.0)
    return call


def abandoned_call(n: int = 0, **overrides: Any) -> CallRecord:
    """An ended call that reached nobody and left no message."""
    return voicemail_call(n, **{"outcome": Outcome.ABANDONED, "voicemail": None, **overrides})


async def log_calls(
    database_url: str,
    settings: NotifySettings,
    *calls: CallRecord,
    caller_lookup: CallerLookup | None = lookup_contacts,
) -> int:
    """Write ``calls`` in one transaction the way `CallLogWriter` does (upsert, events,
    callback tasks) and queue their notifications in it; returns notifications written."""
    snaps = [snapshot(call, datetime.now(UTC)) for call in calls]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            await conn.executemany(UPSERT_CALL_SQL, [s.row for s in snaps])
            events = [ev for s in snaps for ev in s.events]
            if events:
                await conn.executemany(INSERT_EVENT_SQL, events)
            await apply_callbacks(conn, snaps)
            return await enqueue_for_calls(conn, snaps, settings, caller_lookup=caller_lookup)
    finally:
        await conn.close()


async def with_conn(database_url: str, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await fn(conn)
    finally:
        await conn.close()


async def rows(database_url: str, where: str = "TRUE", *args: Any) -> Sequence[asyncpg.Record]:
    return list(
        await with_conn(
            database_url,
            lambda c: c.fetch(
                f"SELECT * FROM notifications WHERE {where} ORDER BY created_at", *args
            ),
        )
    )


async def wait_status(
    database_url: str, status: str, count: int = 1, timeout: float = 10.0
) -> list[asyncpg.Record]:
    """Wait until at least ``count`` notifications have ``status``; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(await rows(database_url, "status = $1", status))
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(found)} of {count} notifications became {status}")
        await asyncio.sleep(0.05)
