"""Bridges and recordings: events, real WAV files with the right duration."""

from __future__ import annotations

import asyncio
import pathlib
import wave

import aiohttp

from pbx_service.simulator import Hangup, PhoneBehaviour, Simulator, Talk, Wait, WaitAnswered
from tests.simulator.conftest import AUTH_HEADERS, TIME_SCALE, Connect


def _seconds(path: object) -> float:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        return float(wav.getnframes() / wav.getframerate())


async def test_bridge_with_agent_and_bridge_recording(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    sim.add_phone("PJSIP/201", PhoneBehaviour.answers(after=1))
    handle = await sim.place_call(
        "+79160000300", "300", caller_name="Caller", steps=[WaitAnswered(), Wait(6), Hangup()]
    )
    customer = (await pbx.wait_for("StasisStart"))["channel"]["id"]
    base = sim.base_url
    async with http.post(f"{base}/channels/{customer}/answer"):
        pass
    async with http.post(
        f"{base}/bridges", params={"type": "mixing", "bridgeId": "br-300", "name": "call-300"}
    ) as response:
        assert response.status == 200
        bridge = await response.json()
        assert bridge["technology"] == "simple_bridge" and bridge["bridge_class"] == "stasis"
    async with http.post(f"{base}/bridges", params={"bridgeId": "br-300"}) as response:
        assert response.status == 409
        assert await response.json() == {"message": "Bridge with id 'br-300' already exists"}
    async with http.post(
        f"{base}/bridges/br-300/addChannel", params={"channel": customer}
    ) as response:
        assert response.status == 204
    async with http.post(
        f"{base}/channels",
        params={
            "endpoint": "PJSIP/201",
            "app": "pbx-service",
            "appArgs": "agent,br-300",
            "callerId": "PBX <+74950000000>",
            "originator": customer,
        },
    ) as response:
        agent = (await response.json())["id"]
    await pbx.wait_for("StasisStart", channel__id=agent)
    async with http.post(
        f"{base}/bridges/br-300/addChannel", params={"channel": agent}
    ) as response:
        assert response.status == 204
    async with http.post(
        f"{base}/bridges/br-300/record", params={"name": "call-300", "format": "wav"}
    ) as response:
        assert response.status == 201
        assert await response.json() == {
            "name": "call-300",
            "format": "wav",
            "state": "queued",
            "target_uri": "bridge:br-300",
        }
    async with http.post(
        f"{base}/bridges/br-300/record", params={"name": "call-300", "format": "wav"}
    ) as response:
        assert response.status == 409
    # A bridged channel cannot be recorded: 201 (queued, as trace 17 shows) plus
    # RecordingFailed, and the recording is unknown afterwards.
    async with http.post(
        f"{base}/channels/{customer}/record", params={"name": "chan", "format": "wav"}
    ) as response:
        assert response.status == 201
    async with http.get(f"{base}/recordings/live/chan") as response:
        assert response.status == 404
    failed = await pbx.wait_for("RecordingFailed")
    assert failed["recording"]["cause"] == "Cannot record channel while in bridge"
    transcript = await asyncio.wait_for(handle.ended, 5)
    assert transcript.bridged[0]["channel_id"] == agent
    await pbx.wait_for("StasisEnd", channel__id=customer)
    # The recording continues until the last channel leaves.
    async with http.get(f"{base}/recordings/live/call-300") as response:
        assert (await response.json())["state"] == "recording"
    await asyncio.sleep(1 * TIME_SCALE)
    async with http.delete(f"{base}/channels/{agent}") as response:
        assert response.status == 204
    finished = await pbx.wait_for("RecordingFinished")
    assert finished["recording"]["state"] == "done"
    async with http.get(f"{base}/recordings/stored/call-300/file") as response:
        assert response.status == 200
        assert response.content_type == "audio/wav"
        assert (await response.read())[:4] == b"RIFF"
    seconds = _seconds(sim.config.recordings_dir / "call-300.wav")
    assert finished["recording"]["duration"] == int(seconds)
    assert 5 < seconds < 9
    types = [
        e["type"]
        for e in pbx.events
        if e["type"] in ("ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd")
        and e["channel"]["id"] == customer
    ]
    assert types == ["ChannelHangupRequest", "ChannelLeftBridge", "StasisEnd"]
    async with http.delete(f"{base}/bridges/br-300") as response:
        assert response.status == 204
    await pbx.wait_for("BridgeDestroyed")
    async with http.post(
        f"{base}/recordings/stored/call-300/copy", params={"destinationRecordingName": "copy"}
    ) as response:
        assert response.status == 200
    async with http.post(
        f"{base}/recordings/stored/call-300/copy", params={"destinationRecordingName": "copy"}
    ) as response:
        assert response.status == 409
    async with http.get(f"{base}/recordings/stored") as response:
        names = sorted(r["name"] for r in await response.json())
        assert names == ["call-300", "copy"]


async def test_voicemail_style_channel_recording(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    handle = await sim.place_call(
        "+7916", "400", steps=[WaitAnswered(), Wait(0.5), Talk(2), Wait(3), Hangup()]
    )
    channel = (await pbx.wait_for("StasisStart"))["channel"]["id"]
    base = f"{sim.base_url}/channels/{channel}"
    async with http.post(f"{base}/answer"):
        pass
    errors = [
        ({"name": "x", "format": "mp3"}, 422, "specified format is unknown on this system"),
        ({"name": "x", "format": "wav", "terminateOn": "Z"}, 400, "terminateOn invalid"),
        ({"format": "wav"}, 500, "Error parsing request"),
    ]
    for params, status, message in errors:
        async with http.post(f"{base}/record", params=params) as response:
            assert response.status == status
            assert await response.json() == {"message": message}
    async with http.post(
        f"{base}/record",
        params={
            "name": "voicemail/400/msg-1",
            "format": "wav",
            "maxSilenceSeconds": "2",
            "maxDurationSeconds": "30",
            "terminateOn": "#",
        },
    ) as response:
        assert response.status == 201
    finished = await pbx.wait_for("RecordingFinished")
    assert set(finished["recording"]) >= {"duration", "talking_duration", "silence_duration"}
    async with http.get(f"{sim.base_url}/recordings/stored/voicemail%2F400%2Fmsg-1") as response:
        assert response.status == 200
    async with http.get(f"{sim.base_url}/recordings/stored/voicemail/400/msg-1") as response:
        assert response.status == 404
        assert await response.json() == {"message": "Resource not found"}
    seconds = _seconds(sim.config.recordings_dir / "voicemail/400/msg-1.wav")
    # 0.5 s silence + 2 s talk; the 2 s of trailing silence ended it and were trimmed.
    assert 2.2 < seconds < 3.0
    assert finished["recording"]["talking_duration"] == 2
    await asyncio.wait_for(handle.ended, 5)


async def test_terminate_on_dtmf_and_cancel(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    caller = await connect("caller-sim")
    del caller
    async with http.post(
        f"{sim.base_url}/channels",
        params={
            "endpoint": "Local/s@test-caller",
            "app": "pbx-service",
            "channelId": "vm",
            "otherChannelId": "vm-2",
        },
    ) as response:
        assert response.status == 200
    async with http.post(f"{sim.base_url}/channels/vm-2/answer") as response:
        assert response.status == 204
    await pbx.wait_for("StasisStart", channel__id="vm")
    async with http.post(
        f"{sim.base_url}/channels/vm/record",
        params={"name": "term", "format": "wav", "terminateOn": "#"},
    ) as response:
        assert response.status == 201
    await pbx.wait_for("RecordingStarted")
    async with http.post(f"{sim.base_url}/channels/vm-2/dtmf", params={"dtmf": "#"}):
        pass
    done = await pbx.wait_for("RecordingFinished")
    assert done["recording"]["name"] == "term"
    assert (sim.config.recordings_dir / "term.wav").is_file()
    async with http.post(
        f"{sim.base_url}/channels/vm/record", params={"name": "term", "format": "wav"}
    ) as response:
        assert response.status == 409
    async with http.post(
        f"{sim.base_url}/channels/vm/record", params={"name": "cancelled", "format": "wav"}
    ) as response:
        assert response.status == 201
    await pbx.wait_for("RecordingStarted", recording__name="cancelled")
    async with http.delete(f"{sim.base_url}/recordings/live/cancelled") as response:
        assert response.status == 204
    cancelled = await pbx.wait_for("RecordingFinished", recording__name="cancelled")
    assert cancelled["recording"]["state"] == "done"
    assert not (sim.config.recordings_dir / "cancelled.wav").exists()


async def test_local_idle_media_option(tmp_path: pathlib.Path) -> None:
    """A Local half with nothing played on its peer: silence frames by default, no frames at
    all (header-only file, maxDurationSeconds ends it) with local_idle_media="none"."""
    elapsed: dict[str, float] = {}
    for mode in ("silence", "none"):
        sim = Simulator(recordings_dir=tmp_path / mode, time_scale=0.2, local_idle_media=mode)
        await sim.start()
        try:
            async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
                connect = Connect(sim, http)
                pbx = await connect("pbx-service")
                await connect("caller-sim")
                async with http.post(
                    f"{sim.base_url}/channels",
                    params={
                        "endpoint": "Local/400@from-trunk",
                        "app": "caller-sim",
                        "channelId": "c",
                        "otherChannelId": "c-2",
                    },
                ):
                    pass
                await pbx.wait_for("StasisStart")
                async with http.post(f"{sim.base_url}/channels/c-2/answer"):
                    pass
                loop = asyncio.get_running_loop()
                started = loop.time()
                async with http.post(
                    f"{sim.base_url}/channels/c-2/record",
                    params={
                        "name": "idle",
                        "format": "wav",
                        "maxSilenceSeconds": "1",
                        "maxDurationSeconds": "3",
                    },
                ) as response:
                    assert response.status == 201
                finished = await pbx.wait_for("RecordingFinished")
                elapsed[mode] = (loop.time() - started) / 0.2
                assert finished["recording"]["duration"] == 0
                assert (tmp_path / mode / "idle.wav").stat().st_size == 44
                for socket in connect.sockets:
                    await socket.close()
        finally:
            await sim.stop()
    assert 0.9 < elapsed["silence"] < 2.0  # maxSilenceSeconds fired
    assert elapsed["none"] >= 2.9  # only maxDurationSeconds could end it
