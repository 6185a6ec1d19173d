"""A small shim over panoramisk 1.4 (pinned) for the few things ARI cannot give us.

We use AMI for endpoint/device states ARI lacks (``DeviceStateList``) and the odd action. The
shim fixes panoramisk's known bugs (see /work/shared/decisions.md):

* UTF-8 split across two TCP reads was dropped (``'Zoë'`` -> ``'Zo'``): its protocol decodes
  every chunk on its own with ``errors='ignore'``; `_Utf8AmiProtocol` decodes incrementally.
* ``Originate`` without an ``Async`` header raised ``KeyError: 'async'`` inside
  ``data_received`` and dropped the connection (upstream #90): every Originate gets an explicit
  ``Async: true|false``, and any exception while handling one message is logged instead of
  killing the connection.
* ``send_action`` before connecting raised ``AttributeError``, and while reconnecting wrote into
  a closed transport and waited forever: both raise `AmiNotConnected` now, and `connect` returns
  only after the login succeeded.

Reconnecting stays panoramisk's job (it re-dials ``reconnect_delay`` seconds after a drop and logs
in again). One change: actions in flight when the connection drops fail with
`AmiConnectionError` instead of being re-sent after the reconnect, because re-sending an
``Originate`` Asterisk may already have run would place a second call.

Usage::

    ami = AmiClient("127.0.0.1", 5038, "pbx-service", secret)
    ami.on("DeviceStateChange", on_device_state)   # sync or async callback(event: dict)
    await ami.connect()
    states = await ami.device_state_list()
    await ami.close()
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager

from pbx_service.ami.errors import (
    AmiActionError,
    AmiArgumentError,
    AmiAuthError,
    AmiConnectionError,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from pbx_service.ami.protocol import LIST_KEYS, AmiFrame, format_action

log = logging.getLogger(__name__)

AmiMessage = AmiFrame
EventCallback = Callable[[AmiMessage], Awaitable[None] | None]
ActionValue = str | int | Sequence[str]

# Asterisk's ast_true(): the spellings it reads as "yes".
_ASTERISK_TRUE: Final = frozenset({"yes", "true", "y", "t", "1", "on"})

# OriginateResponse "Reason" codes (Asterisk's AST_CONTROL_* numbers).
ORIGINATE_REASONS: Final = {
    0: "failed (no such extension/context, or the channel could not be created)",
    1: "hung up",
    3: "no answer",
    4: "answered",
    5: "busy",
    8: "congestion",
}


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """Outcome of `AmiClient.originate`.

    With ``async_=True`` it comes from the ``OriginateResponse`` event: ``reason`` is one of
    `ORIGINATE_REASONS` and ``uniqueid`` the first leg's id (None when no channel was made).
    With ``async_=False`` Asterisk only says success; ``reason`` and ``uniqueid`` are None.
    """

    success: bool
    channel: str
    reason: int | None = None
    uniqueid: str | None = None


def _to_dict(message: Any) -> AmiMessage:
    """panoramisk's Message (case-insensitive, with a 'content' key) -> a plain frame dict."""
    out: AmiMessage = {}
    for key, value in message.items():
        if key == "content" and not value:
            continue
        if key in LIST_KEYS and isinstance(value, str):
            value = [value]
        out[str(key)] = list(value) if isinstance(value, list) else str(value)
    return out


def _prepare(action: Mapping[str, ActionValue]) -> dict[str, ActionValue]:
    headers = dict(action)
    names = {key.lower(): key for key in headers}
    if "action" not in names:
        raise AmiArgumentError("an AMI action needs an 'Action' header, e.g. {'Action': 'Ping'}")
    if "actionid" in names:
        raise AmiArgumentError("leave 'ActionID' out: the client numbers actions itself")
    if str(headers[names["action"]]).lower() == "originate":
        # panoramisk reads action['async'] to decide whether to wait for OriginateResponse and
        # raises KeyError without it (upstream #90). Normalise to exactly "true"/"false".
        value = str(headers.pop(names.get("async", "Async"), "false")).strip().lower()
        headers["Async"] = "true" if value in _ASTERISK_TRUE else "false"
    format_action(headers)  # validates names and values: no line break can inject a header
    return headers


class _Utf8AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol with incremental UTF-8 decoding and per-message isolation."""

    _utf8: codecs.IncrementalDecoder | None = None

    def data_received(self, data: bytes) -> None:
        if self._utf8 is None:
            self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = self._utf8.decode(data)
        if text:
            # Only whole characters reach panoramisk, so its per-chunk decode loses nothing.
            super().data_received(text.encode("utf-8"))

    def handle_message(self, message: Any) -> None:
        try:
            super().handle_message(message)
        except Exception:
            # Raising here would make asyncio close the connection.
            log.exception("AMI message could not be handled; connection kept: %r", message)


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager wired to an `AmiClient`; knows when it is being closed."""

    def __init__(self, client: AmiClient, timing: Mapping[str, float], **config: Any) -> None:
        super().__init__(protocol_factory=_Utf8AmiProtocol, **config)
        self._client = client
        self.closing = False
        self.connect_task: asyncio.Task[Any] | None = None
        # panoramisk int()s these; sub-second values (tests) would become 0 and spin.
        self.reconnect_timeout = timing["reconnect_delay"]
        self.ping_delay = self.ping_interval = timing["ping_interval"]
        self.register_event("*", self._on_event)

    def ping(self) -> None:
        """Replaced by `AmiClient`'s keepalive, which also notices a Ping left unanswered."""

    def _on_event(self, _manager: Any, message: Any) -> None:
        self._client._dispatch(message)

    def connect(
        self, run_forever: bool = False, on_startup: Any = None, on_shutdown: Any = None
    ) -> Any:
        if self.closing:  # a reconnect timer firing after close()
            return None
        self.connect_task = super().connect()
        return self.connect_task

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self.closing:
            if not f.cancelled() and f.exception() is None:
                transport, _protocol = f.result()
                transport.close()
            return
        if not f.cancelled() and isinstance(f.exception(), OSError):
            self._client._unreachable(f.exception())
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        authenticated = bool(super().login(future))
        self._client._login_result(authenticated, future.result())
        return authenticated

    def connection_lost(self, exc: Any) -> None:
        # panoramisk would re-send these after the reconnect; see the module docstring.
        self.awaiting_actions.clear()
        self._client._lost(exc)
        if not self.closing:
            super().connection_lost(exc)


class AmiClient:
    """An AMI connection: log in, send actions, receive events, reconnect after drops.

    ``events`` is the Login ``Events`` value (``on``, ``off`` or a class list like
    ``system,call``). ``action_timeout`` bounds every action unless a call gives its own.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        events: str = "on",
        reconnect_delay: float = 2.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._secret = secret
        self._events = events
        self._timing = {"reconnect_delay": reconnect_delay, "ping_interval": ping_interval}
        self._ping_timeout = ping_timeout
        self._action_timeout = action_timeout
        self._manager: _Manager | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._reported_unreachable = False
        self._logged_in = False
        self._login_waiter: asyncio.Future[None] | None = None
        self._handlers: dict[str, list[EventCallback]] = {}
        self._inflight: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.version: str | None = None

    def __repr__(self) -> str:  # never the secret
        return f"AmiClient({self._host}:{self._port}, user={self._username!r})"

    @property
    def connected(self) -> bool:
        """True while logged in; False before `connect`, while reconnecting and after `close`."""
        return self._logged_in

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect and log in; return once Asterisk accepted the login.

        panoramisk keeps re-dialling while Asterisk is unreachable; after ``timeout`` seconds
        this gives up with `AmiConnectionError`. A refused login raises `AmiAuthError` at once.
        """
        if self._manager is not None:
            raise AmiError("AmiClient.connect() called twice; close() it first")
        loop = asyncio.get_running_loop()
        self._login_waiter = loop.create_future()
        self._manager = _Manager(
            self,
            self._timing,
            loop=loop,
            host=self._host,
            port=self._port,
            username=self._username,
            secret=self._secret,
            events=self._events,
            encoding="utf-8",
        )
        self._manager.connect()
        try:
            async with asyncio.timeout(timeout):
                await self._login_waiter
        except TimeoutError:
            await self.close()
            raise AmiConnectionError(
                f"no AMI login at {self._host}:{self._port} within {timeout} s: is Asterisk "
                "running with manager.conf enabled and this port open?"
            ) from None
        except AmiError:
            await self.close()
            raise
        self._keepalive = asyncio.create_task(self._keep_alive(), name="ami keepalive")

    async def _keep_alive(self) -> None:
        """Ping every ``ping_interval``; an unanswered Ping means a dead peer: reconnect.

        panoramisk pings blindly, so a half-open TCP connection (Asterisk frozen, a firewall
        dropping the flow) would go unnoticed for ever.
        """
        interval = self._timing["ping_interval"]
        while True:
            await asyncio.sleep(interval)
            manager = self._manager
            if manager is None or not self._logged_in:
                continue
            try:
                await self.send_action({"Action": "Ping"}, timeout=self._ping_timeout)
            except AmiTimeout:
                log.warning(
                    "AMI %s:%d did not answer a Ping within %.1f s; reconnecting",
                    self._host,
                    self._port,
                    self._ping_timeout,
                )
                if manager.protocol is not None and manager.protocol.transport is not None:
                    manager.protocol.transport.abort()
            except AmiError as exc:  # dropped meanwhile: panoramisk is already reconnecting
                log.debug("AMI keepalive ping failed: %s", exc)

    async def close(self) -> None:
        """Log off by closing the socket; stop reconnecting; fail actions still in flight."""
        manager, self._manager = self._manager, None
        if manager is None:
            return
        manager.closing = True
        self._logged_in = False
        manager.close()
        if manager.connect_task is not None and not manager.connect_task.done():
            manager.connect_task.cancel()
        self._fail_inflight("the AMI client was closed")
        if self._login_waiter is not None and not self._login_waiter.done():
            self._login_waiter.set_exception(AmiConnectionError("the AMI client was closed"))
        tasks = list(self._tasks)
        if self._keepalive is not None:
            tasks.append(self._keepalive)
            self._keepalive = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def on(self, event: str, callback: EventCallback) -> None:
        """Call ``callback(event_dict)`` for every event named ``event`` (any case); ``*``: all.

        A coroutine callback runs as its own task. Exceptions are logged, never break the
        connection. Events answering one of our actions (e.g. the ``OriginateResponse`` of an
        `originate`) go to that action's result, not to callbacks.
        """
        self._handlers.setdefault(event.lower(), []).append(callback)

    async def send_action(
        self, action: Mapping[str, ActionValue], *, timeout: float | None = None
    ) -> AmiMessage | list[AmiMessage]:
        """Send one action; return its response, or the list of frames of a list response.

        A sequence value repeats its header (``{"Variable": ["A=1", "B=2"]}``). Raises
        `AmiNotConnected`, `AmiArgumentError` (bad header), `AmiActionError`
        (``Response: Error``), `AmiTimeout`, or `AmiConnectionError` when the connection drops
        before the response is complete.
        """
        headers = _prepare(action)
        name = str(next(v for k, v in headers.items() if k.lower() == "action"))
        manager = self._manager
        if manager is None or not self._logged_in:
            raise AmiNotConnected(
                f"AMI action {name!r} not sent: not logged in to {self._host}:{self._port} "
                "(call connect() first, or wait for the reconnect)"
            )
        future: asyncio.Future[Any] = manager.send_action(headers)
        self._inflight.add(future)
        limit = self._action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                reply = await future
        except TimeoutError:
            raise AmiTimeout(f"AMI action {name!r}: no complete response in {limit} s") from None
        finally:
            self._inflight.discard(future)
        if isinstance(reply, list):
            frames = [_to_dict(message) for message in reply]
            if frames and frames[0].get("Response") == "Error":
                raise AmiActionError(name, frames[0])
            return frames
        frame = _to_dict(reply)
        if frame.get("Response") == "Error":
            raise AmiActionError(name, frame)
        return frame

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int = 1,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        timeout_ms: int = 30000,
        variables: Mapping[str, str] | None = None,
        account: str | None = None,
        async_: bool = True,
    ) -> OriginateResult:
        """Originate a call to ``channel``, connected to ``context``/``exten`` or an application.

        Always sends an explicit ``Async`` header. With ``async_=True`` (default) this waits for
        the ``OriginateResponse`` (answered, no answer, busy, ...), up to ``timeout_ms`` plus
        the action timeout. Raises `AmiActionError` when Asterisk refuses the action itself.
        """
        if (application is None) == (context is None and exten is None):
            raise AmiArgumentError("originate() needs either application=, or context= and exten=")
        action: dict[str, ActionValue] = {
            "Action": "Originate",
            "Channel": channel,
            "Timeout": timeout_ms,
            "Async": "true" if async_ else "false",
        }
        if application is not None:
            action["Application"] = application
            if data is not None:
                action["Data"] = data
        else:
            if context is None or exten is None:
                raise AmiArgumentError("originate() to the dialplan needs both context= and exten=")
            action.update(Context=context, Exten=exten, Priority=priority)
        if caller_id is not None:
            action["CallerID"] = caller_id
        if account is not None:
            action["Account"] = account
        if variables:
            action["Variable"] = [f"{key}={value}" for key, value in variables.items()]
        reply = await self.send_action(action, timeout=timeout_ms / 1000 + self._action_timeout)
        frames = reply if isinstance(reply, list) else [reply]
        event = next((f for f in frames if f.get("Event") == "OriginateResponse"), None)
        if event is None:
            return OriginateResult(success=True, channel=channel)
        reason = str(event.get("Reason", ""))
        uniqueid = str(event.get("Uniqueid", ""))
        return OriginateResult(
            success=event.get("Response") == "Success",
            channel=str(event.get("Channel", channel)),
            reason=int(reason) if reason.isdigit() else None,
            uniqueid=uniqueid if uniqueid and uniqueid != "<unknown>" else None,
        )

    async def device_state_list(self) -> dict[str, str]:
        """Every device state Asterisk knows: ``{"PJSIP/101": "NOT_INUSE", ...}``."""
        reply = await self.send_action({"Action": "DeviceStateList"})
        frames = reply if isinstance(reply, list) else [reply]
        return {
            str(f["Device"]): str(f.get("State", ""))
            for f in frames
            if f.get("Event") == "DeviceStateChange" and "Device" in f
        }

    # -- called by _Manager --------------------------------------------------------------

    def _login_result(self, authenticated: bool, response: Any) -> None:
        manager = self._manager
        if manager is not None and manager.protocol is not None:
            self.version = manager.protocol.version
        if authenticated:
            self._logged_in = True
            self._reported_unreachable = False
            log.info("AMI logged in to %s:%d as %r", self._host, self._port, self._username)
            if self._login_waiter is not None and not self._login_waiter.done():
                self._login_waiter.set_result(None)
            return
        message = str(response.get("Message", "") or "no reason given")
        error = AmiAuthError(
            f"AMI login to {self._host}:{self._port} as {self._username!r} refused: {message} "
            "(check the username, secret and permit/deny in manager.conf)"
        )
        if self._login_waiter is not None and not self._login_waiter.done():
            self._login_waiter.set_exception(error)
        else:
            log.error("%s; will retry after the next reconnect", error)

    def _unreachable(self, exc: BaseException | None) -> None:
        if self._reported_unreachable:
            return
        self._reported_unreachable = True
        log.warning(
            "AMI %s:%d unreachable (%s); retrying every %.1f s",
            self._host,
            self._port,
            exc,
            self._timing["reconnect_delay"],
        )

    def _lost(self, exc: Any) -> None:
        was_logged_in, self._logged_in = self._logged_in, False
        if was_logged_in:
            log.warning(
                "AMI connection to %s:%d lost (%s); reconnecting in %.1f s",
                self._host,
                self._port,
                exc,
                self._timing["reconnect_delay"],
            )
        self._fail_inflight("the AMI connection dropped before the response was complete")

    def _fail_inflight(self, reason: str) -> None:
        for future in list(self._inflight):
            if not future.done():
                future.set_exception(AmiConnectionError(reason))

    def _dispatch(self, message: Any) -> None:
        event = _to_dict(message)
        name = str(event.get("Event", ""))
        callbacks = [*self._handlers.get(name.lower(), ()), *self._handlers.get("*", ())]
        for callback in callbacks:
            try:
                result = callback(dict(event))
            except Exception:
                log.exception("AMI event handler %r failed on %s", callback, name)
                continue
            if inspect.isawaitable(result):
                task = asyncio.create_task(self._guard(result, callback, name), name=f"ami {name}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(awaitable: Awaitable[None], callback: EventCallback, name: str) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("AMI event handler %r failed on %s", callback, name)
