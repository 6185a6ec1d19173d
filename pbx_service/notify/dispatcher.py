"""The dispatcher: sends what the outbox holds, in the background, never in a call's way.

One named task (``notify-dispatcher``) claims due notifications (see `outbox` for the locking
and lease rules), sends each in a task of its own (at most ``concurrency`` at once) and settles
it: delivered, retried after an exponential backoff, or failed after the destination's
``max_attempts`` or a permanent refusal. Every outcome is logged with the notification id.

It wakes at once on PostgreSQL NOTIFY (sent by the transaction that enqueued) and polls every
``poll_interval`` seconds anyway, for retries falling due and for a NOTIFY missed while
reconnecting. A database outage only delays notifications: the loop reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg  # type: ignore[import-untyped,unused-ignore]

from pbx_service.config.notify import EmailSettings, NotifySettings, WebhookSettings
from pbx_service.notify import outbox
from pbx_service.notify.audio import FetchAudio, voicemail_attachment
from pbx_service.notify.backoff import retry_delay
from pbx_service.notify.errors import DeliveryError, DispatcherStateError, PermanentDeliveryError
from pbx_service.notify.outbox import ClaimedNotification
from pbx_service.notify.render import build_email
from pbx_service.notify.smtp import Mailer, SmtpMailer
from pbx_service.notify.webhook import WebhookRetryLater, post, redact_url, signed_request
from pbx_service.store.embedded import asyncpg_dsn

log = logging.getLogger(__name__)

T = TypeVar("T")

# The database connection is the problem, not a row: reconnect and go on.
_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class NotificationDispatcher:
    """Delivers queued notifications by e-mail and webhook.

    ``fetch_audio(name)`` returns a stored recording's bytes (WAV) or None; without it e-mails
    say the recording is not available instead of attaching it.
    """

    def __init__(
        self,
        database_url: str,
        settings: NotifySettings,
        *,
        fetch_audio: FetchAudio | None = None,
        poll_interval: float = 1.0,
        node: str | None = None,
        batch_size: int = 20,
        concurrency: int = 10,
        connect_timeout: float = 5.0,
        reconnect_max_seconds: float = 10.0,
        close_grace_seconds: float = 5.0,
        mailer: Mailer | None = None,
    ) -> None:
        if not poll_interval > 0 or batch_size < 1 or concurrency < 1:
            raise DispatcherStateError(
                f"notification dispatcher: poll_interval={poll_interval} must be > 0, "
                f"batch_size={batch_size} and concurrency={concurrency} >= 1"
            )
        self._dsn = asyncpg_dsn(database_url)
        self.settings = settings
        self._fetch_audio = fetch_audio
        self.poll_interval = poll_interval
        self.node = node or socket.gethostname()
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._connect_timeout = connect_timeout
        self._reconnect_max = reconnect_max_seconds
        self._close_grace = close_grace_seconds
        self._mailer: Mailer = mailer or SmtpMailer()
        self._tz = ZoneInfo(settings.timezone)
        self._conn: asyncpg.Connection | None = None
        self._db_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: dict[asyncio.Task[None], ClaimedNotification] = {}
        self._closing = False
        self._closed = False
        self.stats: dict[str, int] = {
            "claimed": 0,
            "delivered": 0,
            "retried": 0,
            "failed": 0,
            "lost_claims": 0,
            "database_errors": 0,
        }

    # ----------------------------------------------------------------- public API

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The background task, for the daemon's supervisor."""
        return self._task

    async def start(self) -> None:
        """Start the background task. Notifications left by a previous run are sent too."""
        if self._task is not None or self._closed:
            raise DispatcherStateError("NotificationDispatcher.start() called twice")
        self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="notify-dispatcher")

    def wake(self) -> None:
        """Look for due notifications now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop claiming, give sends in flight ``close_grace_seconds`` to finish, hand back
        the rest (due at once for the next dispatcher) and disconnect. Idempotent."""
        if self._closed:
            return
        self._closed = self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sending:
            sending = dict(self._sending)
            _done, pending = await asyncio.wait(set(sending), timeout=self._close_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in pending:
                await self._release(sending[task])
        self._sending.clear()
        await self._shutdown()

    async def _release(self, item: ClaimedNotification) -> None:
        try:
            await self._db(lambda conn: outbox.release(conn, item))
        except _DB_ERRORS as exc:
            log.warning("notification %s: not handed back (%s); due after its lease", item.id, exc)

    async def abort(self) -> None:
        """Stop at once without settling anything, as a crash would: claimed notifications
        are sent again by whichever dispatcher finds them after their lease."""
        self._closed = self._closing = True
        tasks = [*self._sending, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sending.clear()
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        await self._shutdown()

    # ----------------------------------------------------------------- the loop

    async def _shutdown(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=2)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                claimed = await self._claim_some()
                delay = 0.1
            except _DB_ERRORS as exc:
                self.stats["database_errors"] += 1
                log.warning("notification outbox unavailable (%s); next try in %.1fs", exc, delay)
                await self._sleep(delay)
                delay = min(self._reconnect_max, delay * 2)
                continue
            except Exception:  # a bug must not silently end deliveries
                log.exception("notification dispatcher loop failed; going on after a pause")
                await self._sleep(self._reconnect_max)
                continue
            if claimed:
                continue
            await self._sleep(self.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _claim_some(self) -> int:
        room = self._concurrency - len(self._sending)
        if room <= 0:
            # Full: wait for a send to finish (or the poll interval, whichever is first).
            await asyncio.wait(
                set(self._sending), timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            return 1
        limit = min(room, self._batch_size)
        lease = self.settings.lease_seconds
        items = await self._db(
            lambda conn: outbox.claim(conn, limit=limit, lease_seconds=lease, node=self.node)
        )
        self.stats["claimed"] += len(items)
        for item in items:
            task = asyncio.create_task(self._deliver(item), name=f"notify-send-{item.id}")
            self._sending[task] = item
            task.add_done_callback(self._sent)
        return len(items)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)
        if not task.cancelled() and task.exception() is None:
            self._wake.set()  # room for more

    async def _db(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._db_lock:
            try:
                conn = await self._connection()
                return await operation(conn)
            except _DB_ERRORS as exc:
                conn = self._conn
                # A server-side error leaves the connection usable; anything else may not.
                if conn is not None and (
                    conn.is_closed() or not isinstance(exc, asyncpg.PostgresError)
                ):
                    conn.terminate()
                    self._conn = None
                raise
            except asyncio.CancelledError:
                # Cut off mid-statement (close, abort): the connection's state is unknown.
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                raise

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await asyncpg.connect(
            self._dsn, timeout=self._connect_timeout, command_timeout=self._connect_timeout * 6
        )
        try:
            await conn.add_listener(outbox.WAKE_CHANNEL, self._notified)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    def _notified(self, *_args: Any) -> None:
        self._wake.set()

    # ----------------------------------------------------------------- one notification

    async def _deliver(self, item: ClaimedNotification) -> None:
        started = time.monotonic()
        max_attempts = 1
        try:
            # A send must end before its lease does, or another dispatcher sends it too.
            async with asyncio.timeout(max(0.5, self.settings.lease_seconds * 0.9)):
                if item.channel == "email":
                    email = self.settings.email
                    if email is None or item.target != outbox.EMAIL_TARGET:
                        raise PermanentDeliveryError("e-mail is no longer configured")
                    max_attempts = email.max_attempts
                    await self._send_email(item, email)
                else:
                    hook = self._webhook(item.target)
                    if hook is None:
                        raise PermanentDeliveryError(
                            f"webhook {redact_url(item.target)} is no longer configured"
                        )
                    max_attempts = hook.max_attempts
                    await self._send_webhook(item, hook)
        except PermanentDeliveryError as exc:
            await self._settle_failed(item, str(exc))
        except DeliveryError as exc:
            await self._settle_retry(item, exc, max_attempts)
        except TimeoutError:
            await self._settle_retry(
                item, DeliveryError("the send outlasted its lease"), max_attempts
            )
        except Exception as exc:  # a bug in rendering or sending: retried, and logged loudly
            log.exception("notification %s: unexpected error while sending", item.id)
            await self._settle_retry(
                item, DeliveryError(f"{type(exc).__name__}: {exc}"), max_attempts
            )
        else:
            await self._settle(
                item,
                outbox.mark_delivered,
                "delivered",
                logging.INFO,
                "notification %s (%s, %s %s) delivered on attempt %d in %.2fs",
                item.id,
                item.kind,
                item.channel,
                redact_url(item.target),
                item.attempt,
                time.monotonic() - started,
            )

    def _webhook(self, url: str) -> WebhookSettings | None:
        return next((hook for hook in self.settings.webhooks if hook.url == url), None)

    async def _send_email(self, item: ClaimedNotification, email: EmailSettings) -> None:
        attachment, note = await voicemail_attachment(
            item.payload,
            email,
            self._fetch_audio,
            last_attempt=item.attempt >= email.max_attempts,
        )
        message = build_email(
            item.id,
            item.kind,
            item.payload,
            item.created_at,
            email,
            tz=self._tz,
            attachment=attachment,
            note=note,
        )
        await self._mailer.send(message, email)

    async def _send_webhook(self, item: ClaimedNotification, hook: WebhookSettings) -> None:
        session = self._session
        if session is None:
            raise DeliveryError("the dispatcher is closed")
        body, headers = signed_request(
            hook, item.id, item.kind, item.created_at, item.payload, item.attempt
        )
        await post(session, hook, body, headers)

    async def _settle_failed(self, item: ClaimedNotification, error: str) -> None:
        await self._settle(
            item,
            lambda conn, it: outbox.mark_failed(conn, it, error),
            "failed",
            logging.ERROR,
            "notification %s (%s, %s %s) failed for good on attempt %d: %s",
            item.id,
            item.kind,
            item.channel,
            redact_url(item.target),
            item.attempt,
            error,
        )

    async def _settle_retry(
        self, item: ClaimedNotification, exc: DeliveryError, max_attempts: int
    ) -> None:
        error = str(exc)
        if item.attempt >= max_attempts:
            await self._settle_failed(item, f"gave up after {item.attempt} attempts: {error}")
            return
        settings = self.settings
        delay = retry_delay(
            item.attempt, settings.retry_initial_seconds, settings.retry_max_seconds
        )
        if isinstance(exc, WebhookRetryLater) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        await self._settle(
            item,
            lambda conn, it: outbox.schedule_retry(conn, it, delay, error),
            "retried",
            logging.WARNING,
            "notification %s (%s, %s %s) attempt %d/%d failed (%s); next in %.1fs",
            item.id,
            item.kind,
            item.channel,
            redact_url(item.target),
            item.attempt,
            max_attempts,
            error,
            delay,
        )

    async def _settle(
        self,
        item: ClaimedNotification,
        operation: Callable[[asyncpg.Connection, ClaimedNotification], Awaitable[bool]],
        stat: str,
        level: int,
        message: str,
        *args: object,
    ) -> None:
        try:
            owned = await self._db(lambda conn: operation(conn, item))
        except _DB_ERRORS as exc:
            self.stats["database_errors"] += 1
            log.warning(
                "notification %s: outcome %s not recorded (%s); it is tried again after its lease",
                item.id,
                stat,
                exc,
            )
            return
        if not owned:
            self.stats["lost_claims"] += 1
            log.warning(
                "notification %s: its lease ran out before it was settled (%s); another "
                "dispatcher took it over",
                item.id,
                stat,
            )
            return
        self.stats[stat] += 1
        log.log(level, message, *args)
