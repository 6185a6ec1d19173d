"""ARI REST commands over one shared aiohttp session.

The session (built by `AriClient`) carries the ``Authorization: Basic`` header; credentials
never appear in a URL, a log line or an exception. Path segments (channel, bridge, playback ids,
recording and device names) are percent-encoded here, ``/`` included: a recording name such as
``voicemail/400/msg-1`` must travel as ``voicemail%2F400%2Fmsg-1`` or Asterisk answers 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from .errors import AriConnectionError, AriProtocolError, AriUsageError, http_error
from .models import Bridge, Channel, Endpoint, LiveRecording, Playback
from .probe import RequestObserver, take_lag

log = logging.getLogger(__name__)

Expect = Literal["json", "none", "bytes"]
ParamValue = str | int | float | bool | None

_JSON_HEADERS = {"Content-Type": "application/json"}


def seg(value: str) -> str:
    """Percent-encode one path segment (``/`` too); ``:`` stays, as in ``Stasis:name``."""
    if not isinstance(value, str) or not value:
        raise AriUsageError(f"an ARI id or name must be a non-empty string, got {value!r}")
    return quote(value, safe=":")


def _query(params: Mapping[str, ParamValue]) -> dict[str, str]:
    # ARI wants booleans as true/false; None means "not given".
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if value is True:
            out[key] = "true"
        elif value is False:
            out[key] = "false"
        else:
            out[key] = str(value)
    return out


def _join_media(media: str | Sequence[str]) -> str:
    if isinstance(media, str):
        items = [media]
    else:
        items = list(media)
    if not items or not all(isinstance(m, str) and m for m in items):
        raise AriUsageError(
            f"media must be a URI such as 'sound:hello-world' or a non-empty list of them, "
            f"got {media!r}"
        )
    return ",".join(items)


def _error_message(body: bytes, reason: str | None) -> str:
    if body:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            # Almost every ARI error is {"message": ...}; 500 "Allocation failed" uses "error".
            for key in ("message", "error"):
                value = data.get(key)
                if isinstance(value, str) and value:
                    return value
        text = body[:200].decode("utf-8", "replace").strip()
        if text and data is None:
            return text
    return reason or ""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class AriRest:
    """Typed ARI REST commands. Raises the `pbx_service.ari.errors` tree, nothing else."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, request_timeout: float = 10.0
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        # Sees every request as it is sent (benchmarks count requests and event lag with it).
        self.observer: RequestObserver | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
        expect: Expect = "json",
        request_timeout: float | None = None,
    ) -> Any:
        """Send one request; ``path`` is relative to the ARI base and already percent-encoded.

        Returns the parsed JSON (None for an empty body), None, or the raw bytes, per
        ``expect``. Non-2xx raises `AriHTTPError` subclasses; transport failures and timeouts
        raise `AriConnectionError`.
        """
        observer = self.observer
        if observer is not None:
            observer(method, path, take_lag())
        url = URL(self._base + path, encoded=True)
        kwargs: dict[str, Any] = {
            "timeout": (
                self._timeout
                if request_timeout is None
                else aiohttp.ClientTimeout(total=request_timeout)
            )
        }
        if params:
            kwargs["params"] = _query(params)
        if json is not None:
            kwargs["data"] = orjson.dumps(json)
            kwargs["headers"] = _JSON_HEADERS
        try:
            async with self._session.request(method, url, **kwargs) as resp:
                body = await resp.read()
                status = resp.status
                reason = resp.reason
        except asyncio.CancelledError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                limit = self._timeout.total if request_timeout is None else request_timeout
                detail = f"no answer within {limit:g}s"
            else:
                detail = _describe(exc)
            raise AriConnectionError(f"{method} {path}: {detail}") from exc
        if status >= 300:
            raise http_error(status, _error_message(body, reason), method, path)
        if expect == "bytes":
            return body
        if expect == "none" or not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise AriProtocolError(
                f"{method} {path}: {status} with a body that is not JSON"
            ) from exc

    async def _obj(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        data = await self.request(method, path, params=params, json=json)
        if not isinstance(data, dict):
            raise AriProtocolError(f"{method} {path}: expected a JSON object, got {type(data)}")
        return data

    async def _list(self, path: str) -> list[dict[str, Any]]:
        data = await self.request("GET", path)
        if not isinstance(data, list):
            raise AriProtocolError(f"GET {path}: expected a JSON array, got {type(data)}")
        return [d for d in data if isinstance(d, dict)]

    async def _none(
        self, method: str, path: str, params: Mapping[str, ParamValue] | None = None
    ) -> None:
        await self.request(method, path, params=params, expect="none")

    # -- channels -------------------------------------------------------------------------

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,  # ARI dial timeout, seconds
        variables: Mapping[str, str] | None = None,
        extension: str | None = None,
        context: str | None = None,
        priority: int | None = None,
    ) -> Channel:
        """``POST /channels``: dial ``endpoint`` into ``app`` or a dialplan location.

        Asterisk answers 200 at once; failures (busy, no answer) arrive later as events.
        """
        params: dict[str, ParamValue] = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "callerId": caller_id,
            "timeout": timeout,
            "extension": extension,
            "context": context,
            "priority": priority,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._obj("POST", "/channels", params, body))

    async def create_channel(
        self,
        endpoint: str,
        *,
        app: str,
        app_args: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """``POST /channels/create``: create a channel without dialling it (see `dial`)."""
        params: dict[str, ParamValue] = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
        }
        body = {"variables": dict(variables)} if variables else None
        return Channel.from_json(await self._obj("POST", "/channels/create", params, body))

    async def dial(
        self,
        channel_id: str,
        *,
        caller: str | None = None,
        timeout: int | None = None,  # ARI dial timeout, seconds
    ) -> None:
        """``POST /channels/{id}/dial``: dial a created channel.

        ``caller`` (a channel id) sets the dialled side's connected line to that channel's caller.
        """
        await self._none(
            "POST", f"/channels/{seg(channel_id)}/dial", {"caller": caller, "timeout": timeout}
        )

    async def get_channel(self, channel_id: str) -> Channel:
        """``GET /channels/{id}``."""
        return Channel.from_json(await self._obj("GET", f"/channels/{seg(channel_id)}"))

    async def list_channels(self) -> list[Channel]:
        """``GET /channels``."""
        return [Channel.from_json(d) for d in await self._list("/channels")]

    async def answer(self, channel_id: str) -> None:
        """``POST /channels/{id}/answer`` (blocks while a playback runs on the channel)."""
        await self._none("POST", f"/channels/{seg(channel_id)}/answer")

    async def progress(self, channel_id: str) -> None:
        """``POST /channels/{id}/progress``: early media indication."""
        await self._none("POST", f"/channels/{seg(channel_id)}/progress")

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        """``POST /channels/{id}/redirect`` (Local channels answer 204 and ignore it)."""
        await self._none("POST", f"/channels/{seg(channel_id)}/redirect", {"endpoint": endpoint})

    async def ring(self, channel_id: str) -> None:
        """``POST /channels/{id}/ring``: send ringing indication."""
        await self._none("POST", f"/channels/{seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        """``DELETE /channels/{id}/ring``."""
        await self._none("DELETE", f"/channels/{seg(channel_id)}/ring")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """``DELETE /channels/{id}?reason=``: ``normal``, ``busy``, ``answered_elsewhere``, ..."""
        await self._none("DELETE", f"/channels/{seg(channel_id)}", {"reason": reason})

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        """``POST /channels/{id}/play[/{playbackId}]``: play one or more media URIs in order."""
        return await self._play(f"/channels/{seg(channel_id)}/play", media, playback_id, lang)

    async def play_on_bridge(
        self,
        bridge_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        """``POST /bridges/{id}/play[/{playbackId}]``: play to every bridge member."""
        return await self._play(f"/bridges/{seg(bridge_id)}/play", media, playback_id, lang)

    async def _play(
        self,
        path: str,
        media: str | Sequence[str],
        playback_id: str | None,
        lang: str | None,
    ) -> Playback:
        if playback_id is not None:
            path += f"/{seg(playback_id)}"
        params: dict[str, ParamValue] = {"media": _join_media(media), "lang": lang}
        return Playback.from_json(await self._obj("POST", path, params))

    async def get_playback(self, playback_id: str) -> Playback:
        """``GET /playbacks/{id}``."""
        return Playback.from_json(await self._obj("GET", f"/playbacks/{seg(playback_id)}"))

    async def stop_playback(self, playback_id: str) -> None:
        """``DELETE /playbacks/{id}``: stop (``PlaybackFinished`` with state ``done`` follows)."""
        await self._none("DELETE", f"/playbacks/{seg(playback_id)}")

    async def control_playback(self, playback_id: str, operation: str) -> None:
        """``POST /playbacks/{id}/control``: ``pause``, ``unpause``, ``restart``, ``reverse``,
        ``forward``."""
        await self._none("POST", f"/playbacks/{seg(playback_id)}/control", {"operation": operation})

    @staticmethod
    def _record_params(
        name: str,
        format: str,
        max_duration_seconds: int | None,
        max_silence_seconds: int | None,
        if_exists: str,
        beep: bool,
        terminate_on: str,
    ) -> dict[str, ParamValue]:
        if not name:
            raise AriUsageError("a recording needs a non-empty name")
        return {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> LiveRecording:
        """``POST /channels/{id}/record``. A bridged channel cannot be recorded (state
        ``failed``); record the bridge or a snoop channel instead."""
        params = self._record_params(
            name, format, max_duration_seconds, max_silence_seconds, if_exists, beep, terminate_on
        )
        path = f"/channels/{seg(channel_id)}/record"
        return LiveRecording.from_json(await self._obj("POST", path, params))

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> LiveRecording:
        """``POST /bridges/{id}/record``: ends when the last channel leaves the bridge."""
        params = self._record_params(
            name, format, max_duration_seconds, max_silence_seconds, if_exists, beep, terminate_on
        )
        path = f"/bridges/{seg(bridge_id)}/record"
        return LiveRecording.from_json(await self._obj("POST", path, params))

    async def get_live_recording(self, name: str) -> LiveRecording:
        """``GET /recordings/live/{name}``."""
        return LiveRecording.from_json(await self._obj("GET", f"/recordings/live/{seg(name)}"))

    async def stop_recording(self, name: str) -> None:
        """``POST /recordings/live/{name}/stop``: stop and keep the file."""
        await self._none("POST", f"/recordings/live/{seg(name)}/stop")

    async def cancel_recording(self, name: str) -> None:
        """``DELETE /recordings/live/{name}``: stop and delete the file."""
        await self._none("DELETE", f"/recordings/live/{seg(name)}")

    async def get_stored_recording_file(self, name: str) -> bytes:
        """``GET /recordings/stored/{name}/file``: the audio file's bytes."""
        data: bytes = await self.request(
            "GET", f"/recordings/stored/{seg(name)}/file", expect="bytes"
        )
        return data

    async def delete_stored_recording(self, name: str) -> None:
        """``DELETE /recordings/stored/{name}``."""
        await self._none("DELETE", f"/recordings/stored/{seg(name)}")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        """``POST /channels/{id}/moh`` (an unknown class plays ``default``)."""
        await self._none("POST", f"/channels/{seg(channel_id)}/moh", {"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        """``DELETE /channels/{id}/moh``."""
        await self._none("DELETE", f"/channels/{seg(channel_id)}/moh")

    async def hold(self, channel_id: str) -> None:
        """``POST /channels/{id}/hold``."""
        await self._none("POST", f"/channels/{seg(channel_id)}/hold")

    async def unhold(self, channel_id: str) -> None:
        """``DELETE /channels/{id}/hold``."""
        await self._none("DELETE", f"/channels/{seg(channel_id)}/hold")

    async def start_silence(self, channel_id: str) -> None:
        """``POST /channels/{id}/silence``."""
        await self._none("POST", f"/channels/{seg(channel_id)}/silence")

    async def stop_silence(self, channel_id: str) -> None:
        """``DELETE /channels/{id}/silence``."""
        await self._none("DELETE", f"/channels/{seg(channel_id)}/silence")

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        between_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        """``POST /channels/{id}/dtmf``."""
        await self._none(
            "POST",
            f"/channels/{seg(channel_id)}/dtmf",
            {"dtmf": dtmf, "between": between_ms, "duration": duration_ms},
        )

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        """``POST /channels/{id}/variable`` (blocks while a playback runs on the channel)."""
        await self._none(
            "POST", f"/channels/{seg(channel_id)}/variable", {"variable": name, "value": value}
        )

    async def set_variables(self, channel_id: str, variables: Mapping[str, str]) -> None:
        """``POST /channels/{id}/variables``: several variables in one request."""
        await self.request(
            "POST",
            f"/channels/{seg(channel_id)}/variables",
            json={"variables": dict(variables)},
            expect="none",
        )

    async def get_variables(self, channel_id: str, names: Sequence[str]) -> dict[str, str]:
        """``GET /channels/{id}/variables``; one unset name fails the whole request (404)."""
        data = await self._obj(
            "GET", f"/channels/{seg(channel_id)}/variables", {"variables": ",".join(names)}
        )
        values = data.get("variables")
        if not isinstance(values, dict):
            return {}
        return {str(k): "" if v is None else str(v) for k, v in values.items()}

    async def get_variable(self, channel_id: str, name: str) -> str:
        """``GET /channels/{id}/variable``; an unset variable raises `AriNotFound`."""
        data = await self._obj("GET", f"/channels/{seg(channel_id)}/variable", {"variable": name})
        value = data.get("value")
        return value if isinstance(value, str) else ""

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """``POST /channels/{id}/continue``: leave Stasis (``StasisEnd`` follows)."""
        await self._none(
            "POST",
            f"/channels/{seg(channel_id)}/continue",
            {"context": context, "extension": extension, "priority": priority, "label": label},
        )

    async def snoop(
        self,
        channel_id: str,
        *,
        app: str,
        spy: str = "both",
        whisper: str = "none",
        snoop_id: str | None = None,
        app_args: str | None = None,
    ) -> Channel:
        """``POST /channels/{id}/snoop``: a channel that hears (``spy``) / speaks into the call."""
        params: dict[str, ParamValue] = {
            "app": app,
            "spy": spy,
            "whisper": whisper,
            "snoopId": snoop_id,
            "appArgs": app_args,
        }
        return Channel.from_json(
            await self._obj("POST", f"/channels/{seg(channel_id)}/snoop", params)
        )

    # -- bridges --------------------------------------------------------------------------

    async def create_bridge(
        self, bridge_id: str | None = None, *, type: str = "mixing", name: str | None = None
    ) -> Bridge:
        """``POST /bridges``: ``type`` is ``mixing``, ``holding``, ``dtmf_events``, ... joined by
        commas."""
        params: dict[str, ParamValue] = {"type": type, "bridgeId": bridge_id, "name": name}
        return Bridge.from_json(await self._obj("POST", "/bridges", params))

    async def get_bridge(self, bridge_id: str) -> Bridge:
        """``GET /bridges/{id}``."""
        return Bridge.from_json(await self._obj("GET", f"/bridges/{seg(bridge_id)}"))

    async def list_bridges(self) -> list[Bridge]:
        """``GET /bridges``."""
        return [Bridge.from_json(d) for d in await self._list("/bridges")]

    async def add_channel(
        self,
        bridge_id: str,
        channel_ids: str | Sequence[str],
        *,
        inhibit_connected_line_updates: bool = False,
        role: str | None = None,
    ) -> None:
        """``POST /bridges/{id}/addChannel`` (blocks while a playback runs on the channel)."""
        ids = [channel_ids] if isinstance(channel_ids, str) else list(channel_ids)
        if not ids or not all(isinstance(c, str) and c for c in ids):
            raise AriUsageError(f"add_channel needs one or more channel ids, got {channel_ids!r}")
        await self._none(
            "POST",
            f"/bridges/{seg(bridge_id)}/addChannel",
            {
                "channel": ",".join(ids),
                "role": role,
                # Sent only when set: older Asterisk versions reject unknown parameters.
                "inhibitConnectedLineUpdates": True if inhibit_connected_line_updates else None,
            },
        )

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        """``POST /bridges/{id}/removeChannel``."""
        await self._none(
            "POST", f"/bridges/{seg(bridge_id)}/removeChannel", {"channel": channel_id}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        """``DELETE /bridges/{id}``."""
        await self._none("DELETE", f"/bridges/{seg(bridge_id)}")

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        """``POST /bridges/{id}/moh``."""
        await self._none("POST", f"/bridges/{seg(bridge_id)}/moh", {"mohClass": moh_class})

    async def stop_bridge_moh(self, bridge_id: str) -> None:
        """``DELETE /bridges/{id}/moh`` (409 when no bridge MOH plays)."""
        await self._none("DELETE", f"/bridges/{seg(bridge_id)}/moh")

    # -- device states, endpoints, asterisk -------------------------------------------------

    async def set_device_state(self, name: str, state: str) -> None:
        """``PUT /deviceStates/{name}``: only ``Stasis:`` devices can be set (409 otherwise)."""
        await self._none("PUT", f"/deviceStates/{seg(name)}", {"deviceState": state})

    async def get_device_state(self, name: str) -> str:
        """``GET /deviceStates/{name}``: ``UNKNOWN`` for a never-set ``Stasis:`` device."""
        data = await self._obj("GET", f"/deviceStates/{seg(name)}")
        state = data.get("state")
        return state if isinstance(state, str) else ""

    async def delete_device_state(self, name: str) -> None:
        """``DELETE /deviceStates/{name}`` (the state reads ``UNKNOWN`` afterwards)."""
        await self._none("DELETE", f"/deviceStates/{seg(name)}")

    async def subscribe(self, app: str, event_source: str) -> dict[str, Any]:
        """``POST /applications/{app}/subscription``; e.g. ``deviceState:Stasis:pbx-callbacks``
        to receive ``DeviceStateChanged``. Returns the Application object."""
        return await self._obj(
            "POST", f"/applications/{seg(app)}/subscription", {"eventSource": event_source}
        )

    async def unsubscribe(self, app: str, event_source: str) -> dict[str, Any]:
        """``DELETE /applications/{app}/subscription`` (422 when not subscribed)."""
        return await self._obj(
            "DELETE", f"/applications/{seg(app)}/subscription", {"eventSource": event_source}
        )

    async def list_endpoints(self) -> list[Endpoint]:
        """``GET /endpoints``."""
        return [Endpoint.from_json(d) for d in await self._list("/endpoints")]

    async def ping(self, *, request_timeout: float | None = None) -> dict[str, Any]:
        """``GET /asterisk/ping``: ``{"asterisk_id", "ping": "pong", "timestamp"}``."""
        data = await self.request("GET", "/asterisk/ping", request_timeout=request_timeout)
        if not isinstance(data, dict):
            raise AriProtocolError("GET /asterisk/ping: expected a JSON object")
        return data

    async def asterisk_info(self, only: str | None = None) -> dict[str, Any]:
        """``GET /asterisk/info``; ``only`` is ``build``, ``system``, ``config`` or ``status``."""
        return await self._obj("GET", "/asterisk/info", {"only": only})
