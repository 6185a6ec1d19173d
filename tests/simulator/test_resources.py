"""Device states, endpoints, variables, sounds: bodies and events as in traces 10, 11, 15."""

from __future__ import annotations

import asyncio
import pathlib
import wave

import aiohttp

from pbx_service.simulator import PhoneBehaviour, Simulator, Wait
from tests.simulator.conftest import AUTH_HEADERS, Connect


async def test_device_states(sim: Simulator, http: aiohttp.ClientSession, connect: Connect) -> None:
    events = await connect("pbx-service")
    url = f"{sim.base_url}/deviceStates"
    async with http.get(f"{url}/Stasis:pbx-callbacks") as response:
        assert await response.json() == {"name": "Stasis:pbx-callbacks", "state": "UNKNOWN"}
    async with http.post(
        f"{sim.base_url}/applications/pbx-service/subscription",
        params={"eventSource": "deviceState:Stasis:pbx-callbacks"},
    ) as response:
        assert (await response.json())["device_names"] == ["Stasis:pbx-callbacks"]
    async with http.put(f"{url}/Stasis:pbx-callbacks", params={"deviceState": "busy"}) as resp:
        assert resp.status == 204
    changed = await events.wait_for("DeviceStateChanged")
    assert changed["device_state"] == {"name": "Stasis:pbx-callbacks", "state": "BUSY"}
    async with http.put(f"{url}/Stasis:pbx-callbacks", params={"deviceState": "BUSY"}):
        pass  # unchanged: no event
    errors = [
        ("PUT", "pbx-callbacks", {"deviceState": "BUSY"}, 409, "Uncontrolled device specified"),
        ("PUT", "Stasis:", {"deviceState": "BUSY"}, 404, "Device name is missing"),
        ("PUT", "Stasis:x", {"deviceState": "NOPE"}, 500, "Unknown device"),
        ("POST", "Stasis:x", {}, 405, "Invalid method"),
    ]
    for method, name, params, status, message in errors:
        async with http.request(method, f"{url}/{name}", params=params) as response:
            assert response.status == status
            assert await response.json() == {"message": message}
    async with http.get(url) as response:
        assert await response.json() == [{"name": "Stasis:pbx-callbacks", "state": "BUSY"}]
    await asyncio.sleep(0.05)
    assert [e["type"] for e in events.events] == ["DeviceStateChanged"]


async def test_endpoints_and_state_changes(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    observer = await connect("observer", subscribe_all=True)
    async with http.get(f"{sim.base_url}/endpoints") as response:
        assert await response.json() == []
    sim.add_phone("PJSIP/101", PhoneBehaviour.answers())
    changed = await observer.wait_for("EndpointStateChange")
    assert changed["endpoint"] == {
        "technology": "PJSIP",
        "resource": "101",
        "state": "online",
        "channel_ids": [],
    }
    sim.add_phone("PJSIP/101", PhoneBehaviour.offline())
    offline = await observer.wait_for("EndpointStateChange", endpoint__state="offline")
    assert offline["endpoint"]["resource"] == "101"
    async with http.get(f"{sim.base_url}/endpoints/PJSIP/101") as response:
        assert (await response.json())["state"] == "offline"
    async with http.get(f"{sim.base_url}/endpoints/PJSIP/999") as response:
        assert response.status == 404
    async with http.get(f"{sim.base_url}/endpoints/Local") as response:
        assert await response.json() == {"message": "No Endpoints found - invalid tech Local"}


async def test_variables_like_trace_15(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    await sim.place_call("+79161112233", "1500", caller_name="Caller", steps=[Wait(60)])
    channel = (await events.wait_for("StasisStart"))["channel"]["id"]
    base = f"{sim.base_url}/channels/{channel}"
    reads = {
        "CALLERID(num)": (200, {"value": "+79161112233"}),
        "CHANNEL(language)": (200, {"value": "en"}),
        "CHANNEL(uniqueid)": (200, {"value": channel}),
        "LEN(abc)": (200, {"value": "3"}),
        "EXTEN": (200, {"value": "1500"}),
        "DID": (200, {"value": "1500"}),
        "__DID": (404, {"message": "Provided variable was not found"}),
        "NOPE": (404, {"message": "Provided variable was not found"}),
        "CHANNEL(nosuchitem)": (500, {"message": "Unable to read provided function"}),
        "NOSUCHFUNC(x)": (500, {"message": "Unable to read provided function"}),
        "": (400, {"message": "Variable name is required"}),
    }
    for name, (status, body) in reads.items():
        async with http.get(f"{base}/variable", params={"variable": name}) as response:
            assert (response.status, await response.json()) == (status, body), name
    async with http.get(f"{base}/variables", params={"variables": "CALLERID(num),DID"}) as response:
        assert await response.json() == {
            "variables": {"CALLERID(num)": "+79161112233", "DID": "1500"}
        }
    async with http.post(
        f"{base}/variable",
        params={"variable": "X_REPORTED", "value": "waiting", "report_events": "true"},
    ) as response:
        assert response.status == 204
    varset = await events.wait_for("ChannelVarset", variable="X_REPORTED")
    assert varset["channel"]["channelvars"]["X_REPORTED"] == "waiting"
    async with http.post(
        f"{base}/variable", params={"variable": "CALLERID(name)", "value": "New Name "}
    ) as response:
        assert response.status == 204
    caller_id = await events.wait_for("ChannelCallerId")
    assert caller_id["channel"]["caller"]["name"] == "New Name"
    async with http.post(
        f"{base}/variable", params={"variable": "CHANNEL(nosuchitem)", "value": "x"}
    ) as response:
        assert response.status == 204
    async with http.post(f"{base}/variables") as response:
        assert response.status == 400
        assert await response.json() == {"message": "The 'variables' field is required"}
    async with http.post(
        f"{base}/variables",
        json={"variables": {"A": "a", "B": {"value": "b", "report_events": True}}},
    ) as response:
        assert response.status == 204
    async with http.get(f"{base}/variable", params={"variable": "B"}) as response:
        assert await response.json() == {"value": "b"}


async def test_prompts_from_sound_dirs_and_language_fallback(tmp_path: pathlib.Path) -> None:
    prompts = tmp_path / "ivr"
    for lang, seconds in (("en", 2.0), ("ru", 3.0)):
        (prompts / lang).mkdir(parents=True)
        with wave.open(str(prompts / lang / "greeting.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(bytes(int(16000 * seconds)))
    sim = Simulator(sound_dirs=[("pbx", prompts)], recordings_dir=tmp_path / "rec", time_scale=0.05)
    await sim.start()
    try:
        sounds = sim.engine.sounds
        assert sounds.media_duration("sound:pbx/greeting", "ru") == 3.0
        assert sounds.media_duration("sound:pbx/greeting", "de") == 2.0  # falls back to en
        assert sounds.media_duration("sound:pbx/missing", "en") is None
        assert sounds.media_duration("sound:beep", "en") == 0.42
        assert sounds.media_duration("sound:phone", "en") is None  # only in ru
        async with (
            aiohttp.ClientSession(headers=AUTH_HEADERS) as http,
            http.get(f"{sim.base_url}/sounds/pbx%2Fgreeting") as response,
        ):
            assert response.status == 200
            assert await response.json() == {
                "id": "pbx/greeting",
                "formats": [
                    {"language": "ru", "format": "slin"},
                    {"language": "en", "format": "slin"},
                ],
            }
    finally:
        await sim.stop()


async def test_phone_device_states(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    sim.add_phone("PJSIP/101", PhoneBehaviour.answers(after=0.5, hangup_after=0.5))
    async with http.post(
        f"{sim.base_url}/applications/pbx-service/subscription",
        params={"eventSource": "deviceState:PJSIP/101"},
    ) as response:
        assert response.status == 200
    async with http.get(
        f"{sim.base_url}/deviceStates/PJSIP/101".replace("PJSIP/101", "PJSIP%2F101")
    ) as response:
        assert await response.json() == {"name": "PJSIP/101", "state": "NOT_INUSE"}
    async with http.post(
        f"{sim.base_url}/channels", params={"endpoint": "PJSIP/101", "app": "pbx-service"}
    ) as response:
        channel_id = (await response.json())["id"]
    await events.wait_for("ChannelDestroyed", channel__id=channel_id)
    await events.wait_for("DeviceStateChanged", device_state__state="NOT_INUSE")
    states = [
        e["device_state"]["state"] for e in events.events if e["type"] == "DeviceStateChanged"
    ]
    assert states == ["RINGING", "INUSE", "NOT_INUSE"]
    sim.add_phone("PJSIP/101", PhoneBehaviour.offline())
    await events.wait_for("DeviceStateChanged", device_state__state="UNAVAILABLE")
