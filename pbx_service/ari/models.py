"""Small immutable typed values built from ARI JSON, and `AriEvent`.

Every ``from_json`` is tolerant: missing fields get empty defaults, unknown fields are ignored
and nothing is logged, because Asterisk versions add fields freely. Timestamps stay the strings
Asterisk sent (``2026-11-25T12:55:22.863+0000``); `parse_timestamp` converts one when needed.

`AriEvent` keeps the parsed dict and builds typed values only when asked, once: most events are
routed on a couple of ids and never need a full `Channel`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from time import monotonic as _monotonic
from types import MappingProxyType
from typing import Any, Final

_EMPTY_VARS: Final[Mapping[str, str]] = MappingProxyType({})


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse an ARI timestamp (``2026-11-25T12:55:22.863+0000``); None if absent or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    return v if isinstance(v, str) else ("" if v is None else str(v))


def _int(d: Mapping[str, Any], key: str) -> int | None:
    v = d.get(key)
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return None
    return None


def _dict(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = d.get(key)
    return v if isinstance(v, dict) else _EMPTY_VARS


@dataclass(frozen=True, slots=True)
class CallerId:
    """A caller id or connected line: ``{"name", "number"}``."""

    name: str = ""
    number: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CallerId:
        return cls(_str(d, "name"), _str(d, "number"))


_NO_CALLER: Final = CallerId()


@dataclass(frozen=True, slots=True)
class DialplanLocation:
    """Where a channel is in the dialplan (ARI's ``DialplanCEP``)."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DialplanLocation:
        return cls(
            _str(d, "context"),
            _str(d, "exten"),
            _int(d, "priority") or 0,
            _str(d, "app_name"),
            _str(d, "app_data"),
        )


_NO_DIALPLAN: Final = DialplanLocation()


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel snapshot as ARI reports it."""

    id: str
    name: str = ""
    state: str = ""
    caller: CallerId = _NO_CALLER
    connected: CallerId = _NO_CALLER
    dialplan: DialplanLocation = _NO_DIALPLAN
    creationtime: str = ""
    language: str = ""
    # Read-only view; excluded from hash so a Channel stays hashable.
    channelvars: Mapping[str, str] = field(default_factory=lambda: _EMPTY_VARS, hash=False)
    accountcode: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Channel:
        caller = d.get("caller")
        connected = d.get("connected")
        dialplan = d.get("dialplan")
        cvars = d.get("channelvars")
        return cls(
            id=_str(d, "id"),
            name=_str(d, "name"),
            state=_str(d, "state"),
            caller=CallerId.from_json(caller) if isinstance(caller, dict) else _NO_CALLER,
            connected=(
                CallerId.from_json(connected) if isinstance(connected, dict) else _NO_CALLER
            ),
            dialplan=(
                DialplanLocation.from_json(dialplan) if isinstance(dialplan, dict) else _NO_DIALPLAN
            ),
            creationtime=_str(d, "creationtime"),
            language=_str(d, "language"),
            channelvars=(
                MappingProxyType({str(k): "" if v is None else str(v) for k, v in cvars.items()})
                if isinstance(cvars, dict) and cvars
                else _EMPTY_VARS
            ),
            accountcode=_str(d, "accountcode"),
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    """A bridge snapshot; ``channels`` holds channel ids."""

    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()
    creator: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Bridge:
        chans = d.get("channels")
        return cls(
            id=_str(d, "id"),
            technology=_str(d, "technology"),
            bridge_type=_str(d, "bridge_type"),
            bridge_class=_str(d, "bridge_class"),
            name=_str(d, "name"),
            channels=tuple(str(c) for c in chans) if isinstance(chans, list) else (),
            creator=_str(d, "creator"),
        )


@dataclass(frozen=True, slots=True)
class Playback:
    """A playback; ``target_uri`` is ``channel:<id>`` or ``bridge:<id>``."""

    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""
    language: str = ""
    next_media_uri: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Playback:
        nxt = d.get("next_media_uri")
        return cls(
            id=_str(d, "id"),
            media_uri=_str(d, "media_uri"),
            target_uri=_str(d, "target_uri"),
            state=_str(d, "state"),
            language=_str(d, "language"),
            next_media_uri=nxt if isinstance(nxt, str) else None,
        )


@dataclass(frozen=True, slots=True)
class LiveRecording:
    """A live recording; durations (whole seconds) appear only in finished recordings."""

    name: str
    format: str = ""
    state: str = ""
    target_uri: str = ""
    duration: int | None = None
    cause: str | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LiveRecording:
        cause = d.get("cause")
        return cls(
            name=_str(d, "name"),
            format=_str(d, "format"),
            state=_str(d, "state"),
            target_uri=_str(d, "target_uri"),
            duration=_int(d, "duration"),
            cause=cause if isinstance(cause, str) else None,
            talking_duration=_int(d, "talking_duration"),
            silence_duration=_int(d, "silence_duration"),
        )


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A device state, e.g. ``Stasis:pbx-callbacks`` ``BUSY``."""

    name: str
    state: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DeviceState:
        return cls(_str(d, "name"), _str(d, "state"))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint (``PJSIP/101``) with the ids of its channels."""

    technology: str
    resource: str = ""
    state: str = ""
    channel_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Endpoint:
        ids = d.get("channel_ids")
        return cls(
            technology=_str(d, "technology"),
            resource=_str(d, "resource"),
            state=_str(d, "state"),
            channel_ids=tuple(str(c) for c in ids) if isinstance(ids, list) else (),
        )


def target_id(target_uri: str | None) -> str | None:
    """The id in a playback/recording target (``channel:ID`` / ``bridge:ID``), else None."""
    if not target_uri:
        return None
    _, sep, ident = target_uri.partition(":")
    return ident if sep and ident else None


class AriEvent:
    """One ARI event: the parsed dict plus lazily built, cached typed accessors.

    Construction only stores the dict and its ``type``; each typed accessor builds its value on
    first use. Accessors return None (or an empty value) when the event has no such field.
    """

    __slots__ = (
        "_bridge",
        "_caller",
        "_channel",
        "_device_state",
        "_endpoint",
        "_peer",
        "_playback",
        "_recording",
        "raw",
        "received",
        "type",
    )

    raw: dict[str, Any]
    type: str
    received: float  # time.monotonic() when read off the socket (see `probe`)
    _channel: Channel | None
    _peer: Channel | None
    _caller: Channel | None
    _bridge: Bridge | None
    _playback: Playback | None
    _recording: LiveRecording | None
    _device_state: DeviceState | None
    _endpoint: Endpoint | None

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        t = raw.get("type")
        self.type = t if t.__class__ is str else ""
        self.received = _monotonic()

    def __repr__(self) -> str:
        ident = self.channel_id or self.bridge_id
        return f"AriEvent({self.type}{', ' + ident if ident else ''})"

    # -- plain fields -------------------------------------------------------------------------

    @property
    def application(self) -> str | None:
        v = self.raw.get("application")
        return v if isinstance(v, str) else None

    @property
    def timestamp(self) -> str | None:
        v = self.raw.get("timestamp")
        return v if isinstance(v, str) else None

    @property
    def digit(self) -> str | None:
        """``ChannelDtmfReceived``: the digit."""
        v = self.raw.get("digit")
        return v if isinstance(v, str) else None

    @property
    def duration_ms(self) -> int | None:
        """``ChannelDtmfReceived``: how long the digit was held."""
        return _int(self.raw, "duration_ms")

    @property
    def args(self) -> tuple[str, ...]:
        """``StasisStart``: the application arguments (empty when none)."""
        v = self.raw.get("args")
        return tuple(str(a) for a in v) if isinstance(v, list) else ()

    @property
    def cause(self) -> int | None:
        """``ChannelHangupRequest`` / ``ChannelDestroyed``: the Q.850 cause."""
        return _int(self.raw, "cause")

    @property
    def cause_txt(self) -> str | None:
        v = self.raw.get("cause_txt")
        return v if isinstance(v, str) else None

    @property
    def dialstatus(self) -> str | None:
        """``Dial``: ``""``, ``RINGING``, ``ANSWER``, ``BUSY``, ``NOANSWER``, ..."""
        v = self.raw.get("dialstatus")
        return v if isinstance(v, str) else None

    @property
    def soft(self) -> bool:
        """``ChannelHangupRequest``: True when the hangup was requested by an application."""
        return self.raw.get("soft") is True

    @property
    def variable(self) -> str | None:
        """``ChannelVarset``: the variable name."""
        v = self.raw.get("variable")
        return v if isinstance(v, str) else None

    @property
    def value(self) -> str | None:
        """``ChannelVarset``: the new value."""
        v = self.raw.get("value")
        return v if isinstance(v, str) else None

    @property
    def eventname(self) -> str | None:
        """``ChannelUserevent``: the user event's name."""
        v = self.raw.get("eventname")
        return v if isinstance(v, str) else None

    @property
    def userevent(self) -> Mapping[str, Any]:
        """``ChannelUserevent``: the user event's fields."""
        return _dict(self.raw, "userevent")

    # -- cheap ids, for routing without building objects ----------------------------------------

    @property
    def channel_id(self) -> str | None:
        c = self.raw.get("channel")
        if c.__class__ is dict:
            v = c.get("id")
            return v if isinstance(v, str) else None
        return None

    @property
    def bridge_id(self) -> str | None:
        b = self.raw.get("bridge")
        if b.__class__ is dict:
            v = b.get("id")
            return v if isinstance(v, str) else None
        return None

    # -- lazily built typed values --------------------------------------------------------------

    @property
    def channel(self) -> Channel | None:
        try:
            return self._channel
        except AttributeError:
            d = self.raw.get("channel")
            self._channel = Channel.from_json(d) if isinstance(d, dict) else None
            return self._channel

    @property
    def peer(self) -> Channel | None:
        """``Dial``: the channel being dialled."""
        try:
            return self._peer
        except AttributeError:
            d = self.raw.get("peer")
            self._peer = Channel.from_json(d) if isinstance(d, dict) else None
            return self._peer

    @property
    def caller(self) -> Channel | None:
        """``Dial``: the calling channel (absent for originates)."""
        try:
            return self._caller
        except AttributeError:
            d = self.raw.get("caller")
            self._caller = Channel.from_json(d) if isinstance(d, dict) else None
            return self._caller

    @property
    def bridge(self) -> Bridge | None:
        try:
            return self._bridge
        except AttributeError:
            d = self.raw.get("bridge")
            self._bridge = Bridge.from_json(d) if isinstance(d, dict) else None
            return self._bridge

    @property
    def playback(self) -> Playback | None:
        try:
            return self._playback
        except AttributeError:
            d = self.raw.get("playback")
            self._playback = Playback.from_json(d) if isinstance(d, dict) else None
            return self._playback

    @property
    def recording(self) -> LiveRecording | None:
        try:
            return self._recording
        except AttributeError:
            d = self.raw.get("recording")
            self._recording = LiveRecording.from_json(d) if isinstance(d, dict) else None
            return self._recording

    @property
    def device_state(self) -> DeviceState | None:
        """``DeviceStateChanged``: the device and its new state."""
        try:
            return self._device_state
        except AttributeError:
            d = self.raw.get("device_state")
            self._device_state = DeviceState.from_json(d) if isinstance(d, dict) else None
            return self._device_state

    @property
    def endpoint(self) -> Endpoint | None:
        try:
            return self._endpoint
        except AttributeError:
            d = self.raw.get("endpoint")
            self._endpoint = Endpoint.from_json(d) if isinstance(d, dict) else None
            return self._endpoint
