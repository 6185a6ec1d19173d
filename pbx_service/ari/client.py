"""`AriClient`: the shared REST session plus the supervised events WebSocket.

Liveness is our own and never aiohttp's ``heartbeat=``: with a real Asterisk that heartbeat
aborted the socket while ``async for`` kept waiting silently (traces/README.md, "Client-side
observations"). Every ``ping_interval`` seconds we send a WebSocket PING and expect *some* frame
(its PONG or any event) within ``ping_timeout``, and we ``GET /asterisk/ping`` over REST with the
same deadline. Any failure tears the socket down and the supervisor reconnects with capped
exponential backoff plus jitter. ``run`` returns only after `close`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Mapping
from types import TracebackType

import aiohttp
from yarl import URL

from .errors import AriConnectionError, AriError, AriFrameError, AriHTTPError, AriUsageError
from .events import AriListener, BadFrameLog, parse_event
from .rest import AriRest

log = logging.getLogger(__name__)

_WS = aiohttp.WSMsgType
_CLOSED_TYPES = frozenset({_WS.CLOSE, _WS.CLOSING, _WS.CLOSED})


def _ari_base(url: str) -> URL:
    try:
        parsed = URL(url.rstrip("/"))
    except (TypeError, ValueError) as exc:
        raise AriUsageError("ARI URL is not a URL; use e.g. http://127.0.0.1:8088/ari") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AriUsageError(
            "ARI URL must be http(s)://host:port/ari, e.g. http://127.0.0.1:8088/ari"
        )
    if parsed.user is not None or parsed.password is not None:
        # Never echo the URL here: it carries the secret.
        raise AriUsageError(
            "ARI URL must not carry credentials; pass username and password separately"
        )
    if parsed.query_string or parsed.fragment:
        raise AriUsageError("ARI URL must not have a query or fragment")
    if not parsed.path.endswith("/ari"):
        # http.conf's prefix comes before /ari; accept the server root too.
        parsed = parsed.with_path(parsed.path.rstrip("/") + "/ari")
    return parsed


class AriClient:
    """One ARI connection: ``rest`` for commands and `run` for the events socket.

    Use as ``async with AriClient(...) as client:``; the session (with the Basic auth header)
    lives for the block. ``run(listener)`` supervises the socket until `close`.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        app: str,
        *,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        reconnect_max_delay: float = 10.0,
        subscribe_all: bool = False,
        request_timeout: float = 10.0,
        reconnect_initial_delay: float = 0.5,
    ) -> None:
        if not app or "," in app:
            raise AriUsageError(f"app must be one Stasis application name, got {app!r}")
        if not username:
            raise AriUsageError("ARI username is empty; set ari.username in the config")
        for label, value in (
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
            ("reconnect_max_delay", reconnect_max_delay),
            ("request_timeout", request_timeout),
            ("reconnect_initial_delay", reconnect_initial_delay),
        ):
            if not value > 0:
                raise AriUsageError(f"{label} must be > 0 seconds, got {value!r}")
        self._base = _ari_base(url)
        scheme = "wss" if self._base.scheme == "https" else "ws"
        self._ws_url = self._base.with_scheme(scheme) / "events"
        self._ws_params = {"app": app}
        if subscribe_all:
            self._ws_params["subscribeAll"] = "true"
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._auth_header = f"Basic {token}"
        self.app = app
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_max_delay = reconnect_max_delay
        self.reconnect_initial_delay = reconnect_initial_delay
        self._request_timeout = request_timeout

        self._session: aiohttp.ClientSession | None = None
        self._rest: AriRest | None = None
        self._closing = False
        self._close_event = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._run_done: asyncio.Event | None = None
        # Resolved by the reader on the next received frame; set by the liveness check.
        self._rx_waiter: asyncio.Future[None] | None = None
        self._in_listener = False
        self._bad_frames = BadFrameLog(log)
        self._connects = 0

    def __repr__(self) -> str:
        return f"AriClient({str(self._base)!r}, app={self.app!r})"

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> AriClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Authorization": self._auth_header})
            self._rest = AriRest(
                self._session, str(self._base), request_timeout=self._request_timeout
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def rest(self) -> AriRest:
        """The REST commands (available inside ``async with``)."""
        if self._rest is None:
            raise AriUsageError(
                "AriClient.rest is available only inside 'async with AriClient(...)'"
            )
        return self._rest

    @property
    def connected(self) -> bool:
        """True while the events socket is up."""
        return self._connected_event.is_set()

    @property
    def connect_count(self) -> int:
        """How many times the events socket has connected so far."""
        return self._connects

    @property
    def bad_frames(self) -> Mapping[str, int]:
        """Skipped frames by kind (``not-json``, ``not-object``, ``no-type``, ``binary``)."""
        return self._bad_frames.counts

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the events socket is up; `AriConnectionError` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected_event.wait()
        except TimeoutError as exc:
            raise AriConnectionError(
                f"ARI events socket for app {self.app!r} not connected within {timeout}s"
            ) from exc

    async def close(self) -> None:
        """Stop `run` (tearing the socket down) and wait for it to return."""
        self._closing = True
        self._close_event.set()
        done = self._run_done
        if done is not None:
            await done.wait()

    # -- supervision --------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        delay: float = min(
            self.reconnect_max_delay, self.reconnect_initial_delay * 2.0 ** min(attempt, 30)
        )
        # Jitter spreads reconnects of several daemons after an Asterisk restart.
        return min(self.reconnect_max_delay, delay * random.uniform(0.75, 1.25))

    async def run(self, listener: AriListener) -> None:
        """Keep the events socket connected and feed ``listener`` until `close` is called."""
        if self._session is None:
            raise AriUsageError("call run() inside 'async with AriClient(...)'")
        if self._run_done is not None:
            raise AriUsageError("AriClient.run() is already running")
        self._run_done = asyncio.Event()
        loop = asyncio.get_running_loop()
        attempt = 0
        try:
            while not self._closing:
                started = loop.time()
                connected, reason, replaced = await self._connect_and_serve(listener)
                if self._closing:
                    break
                stable = connected and loop.time() - started >= max(self.ping_interval, 1.0)
                if stable and not replaced:
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("ARI events socket: %s; reconnecting in %.2fs", reason, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._close_event.wait()
        finally:
            self._connected_event.clear()
            self._run_done.set()
            self._run_done = None

    async def _connect_and_serve(self, listener: AriListener) -> tuple[bool, str, bool]:
        """One connection's life. Returns (connected at all, why it ended, app replaced)."""
        assert self._session is not None
        connect = asyncio.ensure_future(self._connect(self._session))
        closer = asyncio.ensure_future(self._close_event.wait())
        try:
            # close() must not wait for a connect attempt to time out.
            await asyncio.wait((connect, closer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closer.cancel()
            if not connect.done():
                connect.cancel()
            await asyncio.gather(connect, closer, return_exceptions=True)
        if connect.cancelled():
            return False, "closed by us while connecting", False
        try:
            ws = connect.result()
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                return False, f"ARI refused the credentials (HTTP {exc.status})", False
            return False, f"handshake refused (HTTP {exc.status} {exc.message})", False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = str(exc) or "no answer in time"
            return False, f"cannot connect ({type(exc).__name__}: {detail})", False
        if self._closing:
            await self._teardown(ws)
            return False, "closed by us while connecting", False

        self._connects += 1
        reconnected = self._connects > 1
        log.info("ARI events socket connected (app %s, connect #%d)", self.app, self._connects)
        self._connected_event.set()
        reason = "closed"
        replaced = False
        try:
            try:
                await listener.on_connected(reconnected)
            except Exception:
                log.exception("ARI listener failed in on_connected")
            reason, replaced = await self._serve(ws, listener)
        finally:
            self._connected_event.clear()
            await self._teardown(ws)
            try:
                await listener.on_disconnected()
            except Exception:
                log.exception("ARI listener failed in on_disconnected")
        return True, reason, replaced

    async def _connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        async with asyncio.timeout(self._request_timeout):
            return await session.ws_connect(
                self._ws_url,
                params=self._ws_params,
                # We answer PINGs ourselves: with autoping aiohttp swallows PONG frames
                # inside receive(), and we need to see them for liveness.
                autoping=False,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.ping_timeout),
            )

    async def _serve(
        self, ws: aiohttp.ClientWebSocketResponse, listener: AriListener
    ) -> tuple[str, bool]:
        self._in_listener = False
        reader = asyncio.create_task(self._read(ws, listener), name="ari-events-reader")
        watcher = asyncio.create_task(self._watch(ws), name="ari-liveness")
        closer = asyncio.create_task(self._close_event.wait(), name="ari-close-wait")
        tasks = (reader, watcher, closer)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if closer.done() and not closer.cancelled() and self._closing:
            return "closed by us", False
        for t in (reader, watcher):
            if t.done() and not t.cancelled():
                exc = t.exception()
                if exc is not None:
                    log.error("ARI %s task died", t.get_name(), exc_info=exc)
                    return f"{t.get_name()} failed: {type(exc).__name__}", False
                reason, replaced = t.result()
                return reason, replaced
        return "stopped", False

    async def _teardown(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._rx_waiter = None
        if ws.closed:
            return
        # A dead peer never answers our CLOSE: bound the wait; on timeout aiohttp drops the
        # TCP connection itself.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.ping_timeout + 0.5):
                await ws.close()

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, listener: AriListener
    ) -> tuple[str, bool]:
        on_event = listener.on_event
        bad = self._bad_frames
        text = _WS.TEXT
        while True:
            msg = await ws.receive()
            waiter = self._rx_waiter
            if waiter is not None:
                self._rx_waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            mtype = msg.type
            if mtype is text:
                try:
                    event = parse_event(msg.data)
                except AriFrameError as exc:
                    bad.report(exc)
                    continue
                self._in_listener = True
                try:
                    await on_event(event)
                except AriHTTPError as exc:
                    if exc.means_channel_gone:
                        # The caller hung up mid-command: normal, not an error.
                        log.debug("channel gone while handling %s: %s", event.type, exc)
                    else:
                        log.exception("ARI listener failed on a %s event", event.type)
                except Exception:
                    log.exception("ARI listener failed on a %s event", event.type)
                # Not reset on cancellation: _serve resets it for the next connection.
                self._in_listener = False
                if event.type == "ApplicationReplaced":
                    log.warning(
                        "another client took over Stasis application %r; reconnecting", self.app
                    )
                    return "application replaced by another client", True
            elif mtype is _WS.PING:
                await ws.pong(msg.data)
            elif mtype is _WS.PONG:
                continue
            elif mtype is _WS.BINARY:
                bad.report(AriFrameError("binary", f"{len(msg.data)} bytes"))
            elif mtype in _CLOSED_TYPES:
                return f"closed by the server (code {ws.close_code})", False
            else:  # ERROR
                return f"socket error ({msg.data!r})", False

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, bool]:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval)
            rest_ping = asyncio.create_task(self._rest_ping(), name="ari-rest-ping")
            try:
                reason = await self._ws_ping(ws, loop)
                rest_reason = await rest_ping
            finally:
                rest_ping.cancel()
            if reason is None:
                reason = rest_reason
            if reason is not None:
                log.warning("ARI liveness check failed: %s", reason)
                return reason, False

    async def _ws_ping(
        self, ws: aiohttp.ClientWebSocketResponse, loop: asyncio.AbstractEventLoop
    ) -> str | None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._rx_waiter = waiter
        try:
            try:
                await ws.ping()
            except Exception as exc:
                return f"WebSocket PING could not be sent ({type(exc).__name__})"
            try:
                async with asyncio.timeout(self.ping_timeout):
                    await waiter
            except TimeoutError:
                if self._in_listener:
                    # The reader is held by the listener (backpressure), so a PONG may sit
                    # unread: that says nothing about the peer.
                    log.warning(
                        "ARI listener has held the events reader for over %.1fs", self.ping_timeout
                    )
                    return None
                return f"no frame within {self.ping_timeout:g}s of a WebSocket PING"
            return None
        finally:
            if self._rx_waiter is waiter:
                self._rx_waiter = None

    async def _rest_ping(self) -> str | None:
        try:
            await self.rest.ping(request_timeout=self.ping_timeout)
        except AriError as exc:
            return f"GET /asterisk/ping failed ({exc})"
        return None
