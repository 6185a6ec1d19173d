"""Bad requests get Asterisk-style errors, never a 500 traceback; dropped clients are harmless."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp

from pbx_service.simulator import Simulator, Wait
from pbx_service.simulator.rest import ROUTES
from tests.simulator.conftest import Connect

# 500s Asterisk itself returns for these inputs (traces 04, 05, 11, 13, 15, 17).
_EXPECTED_500 = {
    "Allocation failed",
    "Error parsing request",
    "Unknown device",
    "Unable to read provided function",
}
_GARBAGE = ["", "x", "-1", "9" * 30, "../x", "%00", "a/b", "💥", "true", "{}", "Local/"]


async def test_garbage_never_gives_unexpected_500(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    await connect("pbx-service")
    await sim.place_call("+7916", "100", steps=[Wait(60)])
    await asyncio.sleep(0.05)
    live = next(iter(sim.engine.channels)).id
    statuses: dict[int, int] = {}
    for method, path, _ in ROUTES:
        for value, body in itertools.product(_GARBAGE[:6], (None, "not json", {"variables": 5})):
            filled = "/".join(
                (live if part == "{channelId}" and value == "x" else (value or "v"))
                if part.startswith("{")
                else part
                for part in path.split("/")
            )
            params = {
                name: value
                for name in (
                    "endpoint",
                    "app",
                    "media",
                    "name",
                    "format",
                    "channel",
                    "variable",
                    "value",
                    "dtmf",
                    "operation",
                    "deviceState",
                    "eventSource",
                    "timeout",
                    "type",
                    "terminateOn",
                    "ifExists",
                    "maxDurationSeconds",
                    "reason",
                    "lang",
                )
            }
            data = body if isinstance(body, str) else None
            json_body = body if isinstance(body, dict) else None
            async with http.request(
                method, f"{sim.base_url}/{filled}", params=params, data=data, json=json_body
            ) as response:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status >= 500:
                    payload = await response.json()
                    message = payload.get("message") or payload.get("error")
                    assert message in _EXPECTED_500, (method, filled, params, body, payload)
    # The garbage reached real handlers, not only the router.
    assert {200, 400, 404, 409} <= set(statuses) and sum(statuses.values()) > 500


async def test_clients_dropping_mid_socket_do_not_break_the_simulator(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    async with aiohttp.ClientSession() as rude:
        ws = await rude.ws_connect(
            f"{sim.base_url}/events?app=pbx-service&api_key=pbx-service:secret"
        )
        await sim.place_call("+7916", "100", steps=[Wait(60)])
        await asyncio.sleep(0.05)
        transport = ws._response.connection.transport  # type: ignore[union-attr]
        assert transport is not None
        transport.abort()
    await asyncio.sleep(0.1)
    # The socket is gone: the app is inactive, a new call falls back (STASISSTATUS=FAILED).
    handle = await sim.place_call("+7916", "101", steps=[])
    transcript = await asyncio.wait_for(handle.ended, 5)
    assert transcript.stasis_status == "FAILED"
    events = await connect("pbx-service")
    async with http.get(f"{sim.base_url}/asterisk/ping") as response:
        assert response.status == 200
    # Nothing is replayed on reconnect: no StasisStart for the call already in the app.
    await asyncio.sleep(0.1)
    assert events.events == []


async def test_client_gone_during_a_blocked_request(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    await sim.place_call("+7916", "100", steps=[Wait(60)])
    channel_id = (await events.wait_for("StasisStart"))["channel"]["id"]
    base = f"{sim.base_url}/channels/{channel_id}"
    async with http.post(f"{base}/play", params={"media": "sound:demo-congrats"}):
        pass
    # answer blocks behind the 30 s prompt; the client gives up after 50 ms.
    try:
        await asyncio.wait_for(http.post(f"{base}/answer"), 0.05)
    except TimeoutError:
        pass
    else:
        raise AssertionError("answer returned during the playback")
    async with http.get(f"{base}") as response:
        assert (await response.json())["state"] == "Ring"
    # Stopping the playback lets the abandoned answer run; the simulator carries on.
    playback_id = next(e for e in events.events if e["type"] == "PlaybackStarted")
    async with http.delete(f"{sim.base_url}/playbacks/{playback_id['playback']['id']}"):
        pass
    await events.wait_for("ChannelStateChange")
    async with http.get(f"{base}") as response:
        assert (await response.json())["state"] == "Up"
