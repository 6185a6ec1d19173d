"""An ARI server that behaves like Asterisk 22 for the subset pbx-service uses.

It serves `/ari/...` (REST + the events WebSocket) with Asterisk's paths, JSON shapes, status
codes, error bodies and event order (see ../shared/ari-reference/traces/README.md), runs a
mini dialplan (`from-trunk`, `test-caller`, `test-ring`, `test-busy`, `test-congestion`,
`rec-agent-phone`, `rec-continue`), simulated PJSIP phones and scripted inbound callers.

Python API::

    sim = Simulator(username="pbx-service", password="secret",
                    sound_dirs=[("", core_dir), ("pbx", ivr_prompts_dir)],
                    recordings_dir=tmp / "recording", time_scale=0.1,
                    fallback_endpoints=("PJSIP/101", "PJSIP/102"))
    await sim.start(host="127.0.0.1", port=0)
    sim.base_url                      # "http://127.0.0.1:PORT/ari"
    sim.add_phone("PJSIP/101", PhoneBehaviour.answers(after=2))
    handle = await sim.place_call("+79161234567", "74951234567", caller_name="Ivan",
                                  steps=[WaitAnswered(), SendDtmf("1"), Wait(3), Hangup()])
    transcript = await handle.ended
    sim.requests                      # every REST request: method, path, query, body, status
    await sim.stop()

Command line: `python -m pbx_service.simulator --port 8088 --time-scale 1.0
--sound-dir pbx=ivr_prompts --fallback-endpoint PJSIP/101 --phone PJSIP/101=2 ...`.

HTTP control API (JSON, no auth, outside /ari; `pbx_service.simulator.control`):

  GET    /_sim/requests                  REST request log: method, path, query, body, status
  DELETE /_sim/requests                  clear it
  GET    /_sim/phones                    phones with behaviour and per-call log
  PUT    /_sim/phones/{tech}/{resource}  body: PhoneBehaviour fields -> register / change
  DELETE /_sim/phones/{tech}/{resource}  unregister (EndpointStateChange offline)
  POST   /_sim/calls                     {"caller_number", "did", "caller_name"?, "steps": [...]}
                                         -> 201 {"channel_id", "channel_name"}
  GET    /_sim/calls                     every scripted call's transcript (+ "ended")
  GET    /_sim/calls/{channel_id}        one transcript
  GET    /_sim/log                       call log: inbound calls, fallbacks, voicemails

Steps are described in `pbx_service.simulator.scripted`; phone behaviours in
`pbx_service.simulator.phones`. Timed behaviour (playbacks, recordings, DTMF, phone delays,
dialplan waits, the reception fallback's ring time) runs on `time_scale`. The `timeout` a
client gives to `POST /channels` or `/dial` is the client's own and runs on the wall clock,
so it keeps its order with the client's timers (a daemon ringing agents for 15 s and passing
Asterisk a 20 s backstop); a client that runs on the scaled clock itself (a trace replay)
passes `scale_client_timeouts=True`.

Deviations from Asterisk are listed in `DEVIATIONS` below.
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from pbx_service.errors import PbxError
from pbx_service.simulator.control import control_routes
from pbx_service.simulator.engine import Engine, SimConfig
from pbx_service.simulator.origination import place_call as _place_call
from pbx_service.simulator.phones import Phone, PhoneBehaviour, split_endpoint
from pbx_service.simulator.scripted import (
    CallHandle,
    Hangup,
    SendDtmf,
    Step,
    Talk,
    Transcript,
    Wait,
    WaitAnswered,
    WaitBridged,
    WaitPlayback,
    parse_step,
)
from pbx_service.simulator.server import AriServer, build_app

__all__ = [
    "DEVIATIONS",
    "CallHandle",
    "Hangup",
    "PhoneBehaviour",
    "SendDtmf",
    "Simulator",
    "SimulatorError",
    "Talk",
    "Transcript",
    "Wait",
    "WaitAnswered",
    "WaitBridged",
    "WaitPlayback",
]

DEVIATIONS = """
* Only the subset pbx-service uses: no AMI, FastAGI, CDR/CEL, CLI, mailboxes or external
  media; `redirect` validates like Asterisk and answers 204 but transfers nothing (what
  Asterisk does for Local channels anyway).
* Orders Asterisk produces from several threads (which Local half is destroyed first, when a
  second app on a shared socket gets its copy, Dial "" vs the first ChannelDialplan) follow one
  fixed order per situation; the traces show both orders for some of them.
* An unregistered (offline) PJSIP endpoint and an unknown PJSIP resource both make
  `POST /channels` fail with 500 {"error": "Allocation failed"}: ARI's originate runs
  ast_dial_prerun synchronously and chan_pjsip cannot create a session without a contact.
  A number behind a configured trunk (`PJSIP/<num>@trunk`) without a registered phone rings
  until the originate timeout.
* PJSIP phone legs: Dial ""/RINGING/ANSWER, StasisStart on answer; no-answer timeout gives
  ChannelDestroyed cause 19 without a hangup request (like the Local ;1 in trace 05); busy gives
  Dial BUSY, ChannelHangupRequest 17, ChannelDestroyed 17.
* Audio is not real: recordings contain silence, or a quiet 440 Hz tone while a scripted caller
  `Talk`s (channel) or while two parties are bridged (bridge). gsm/ulaw/alaw files have the
  right size but no meaningful content.
* Asterisk writes `sub/../../x` recordings outside the recording directory; the simulator
  keeps the live recording but writes nothing (Finished done duration 0, no file). A read-only
  recording directory cannot be simulated (Asterisk fails such recordings at once).
* Recording "audio": a Local half hears what is played on its other half (silence/N prompts
  are silence frames); while nothing plays there it hears silence frames, where Asterisk
  (transmit_silence=yes) passes no frames at all, so maxSilenceSeconds never fires and the
  file is header-only (trace 04): `local_idle_media="none"` reproduces that. A SIP leg (trunk
  caller, phone) sends silence frames unless a scripted caller `Talk`s.
  talking_duration/silence_duration are computed from that, not from real audio.
* `POST /channels/create` + `/dial?caller=X` subscribes the app to X (inferred from trace 13).
* Console-only actions (`devstate change`, `dialplan reload`) have no equivalent; device
  states of PJSIP endpoints are derived from the phones (UNAVAILABLE offline, INUSE in a call).
* Hold/MOH/silence have no events (as in Asterisk) and are only noted in transcripts.
"""


class SimulatorError(PbxError):
    """Misuse of the simulator's Python API."""

    error_id = "simulator-error"


def _default_sound_dirs() -> list[tuple[str, pathlib.Path]]:
    prompts = pathlib.Path(__file__).resolve().parents[2] / "ivr_prompts"
    return [("pbx", prompts)] if prompts.is_dir() else []


class Simulator:
    """One simulated Asterisk with its ARI server."""

    def __init__(
        self,
        *,
        username: str = "pbx-service",
        password: str = "secret",
        sound_dirs: Sequence[tuple[str, str | pathlib.Path]] | None = None,
        recordings_dir: str | pathlib.Path | None = None,
        time_scale: float = 1.0,
        fallback_endpoints: Sequence[str] = (),
        fallback_ring_seconds: float = 20.0,
        channelvars: Sequence[str] = ("DID", "CALLERID(name)"),
        trunks: Sequence[str] = ("trunk",),
        stasis_app: str = "pbx-service",
        local_idle_media: str = "silence",
        scale_client_timeouts: bool = False,
        request_log_limit: int | None = None,
    ) -> None:
        if time_scale <= 0:
            raise SimulatorError(f"time_scale must be > 0, got {time_scale}")
        if local_idle_media not in ("silence", "none"):
            raise SimulatorError(
                f"local_idle_media must be 'silence' or 'none', got {local_idle_media!r}"
            )
        if recordings_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pbx-sim-recordings-")
            recordings_dir = self._tmp.name
        dirs = (
            [(prefix, pathlib.Path(path)) for prefix, path in sound_dirs]
            if sound_dirs is not None
            else _default_sound_dirs()
        )
        self.config = SimConfig(
            sound_dirs=dirs,
            recordings_dir=pathlib.Path(recordings_dir),
            time_scale=time_scale,
            fallback_endpoints=tuple(fallback_endpoints),
            fallback_ring_seconds=fallback_ring_seconds,
            channelvars=tuple(channelvars),
            trunks=tuple(trunks),
            stasis_app=stasis_app,
            local_idle_media=local_idle_media,
            scale_client_timeouts=scale_client_timeouts,
        )
        self.config.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(self.config)
        self.requests: list[dict[str, Any]] = []
        self.calls: dict[str, CallHandle] = {}
        # None keeps every request; a limit keeps the latest (long load runs).
        self._server = AriServer(self.engine, username, password, self.requests, request_log_limit)
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT/ari`."""
        return f"http://{self.host}:{self.port}/ari"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.port}/_sim"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 picks a free port)."""
        app = build_app(self._server, control_routes(self))
        self._runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.host = host
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        """Close sockets, stop every call task, stop listening."""
        await self._server.close_sockets()
        await self.engine.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_phone(self, endpoint: str, behaviour: PhoneBehaviour | None = None) -> Phone:
        """Register (or change) a simulated phone such as `PJSIP/101`."""
        tech, resource = split_endpoint(endpoint)
        behaviour = behaviour or PhoneBehaviour()
        phone = self.engine.phones.get(endpoint)
        if phone is None:
            phone = Phone(tech, resource, behaviour)
            self.engine.phones[endpoint] = phone
            if behaviour.online:
                self.engine.endpoint_changed(phone)
            return phone
        was_online = phone.behaviour.online
        phone.behaviour = behaviour
        if was_online != behaviour.online:
            self.engine.endpoint_changed(phone)
        return phone

    def remove_phone(self, endpoint: str) -> bool:
        phone = self.engine.phones.pop(endpoint, None)
        if phone is None:
            return False
        if phone.behaviour.online:
            phone.behaviour = PhoneBehaviour(online=False)
            self.engine.endpoint_changed(phone)
        return True

    async def place_call(
        self,
        caller_number: str,
        did: str,
        *,
        caller_name: str | None = None,
        steps: Sequence[Step | dict[str, Any]] = (),
        trunk: str | None = None,
    ) -> CallHandle:
        """An inbound call from the trunk to `did`, performing `steps`."""
        parsed = [parse_step(step) for step in steps]
        handle = _place_call(self.engine, caller_number, did, caller_name, parsed, trunk)
        self.calls[handle.channel_id] = handle
        return handle
