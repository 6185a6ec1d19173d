"""Scripted inbound callers entering from-trunk and pbx-service driving them over ARI."""

from __future__ import annotations

import asyncio
import pathlib
import wave

import aiohttp

from pbx_service.simulator import (
    Hangup,
    PhoneBehaviour,
    SendDtmf,
    Simulator,
    Wait,
    WaitAnswered,
    WaitPlayback,
)
from tests.simulator.conftest import Connect


async def test_inbound_call_reaches_pbx_service(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    handle = await sim.place_call(
        "+79161234567",
        "74951234567",
        caller_name="Ivan Petrov",
        steps=[WaitAnswered(), Wait(1), Hangup()],
    )
    start = await events.wait_for("StasisStart")
    channel = start["channel"]
    assert start["args"] == ["did=74951234567"]
    assert start["application"] == "pbx-service"
    assert channel["state"] == "Ring"
    assert channel["name"].startswith("PJSIP/trunk-")
    assert channel["caller"] == {"name": "Ivan Petrov", "number": "+79161234567"}
    assert channel["dialplan"] == {
        "context": "from-trunk",
        "exten": "74951234567",
        "priority": 3,
        "app_name": "Stasis",
        "app_data": "pbx-service,did=74951234567",
    }
    assert channel["channelvars"] == {"DID": "74951234567", "CALLERID(name)": "Ivan Petrov"}
    async with http.post(f"{sim.base_url}/channels/{channel['id']}/answer") as response:
        assert response.status == 204
    transcript = await asyncio.wait_for(handle.ended, 5)
    assert transcript.answered_at is not None
    assert transcript.hungup_by == "caller" and transcript.hangup_cause == 16
    assert transcript.stasis_status == "SUCCESS"
    # Caller hangup: HangupRequest cause 16 without soft, then StasisEnd, no ChannelDestroyed.
    await events.wait_for("StasisEnd")
    assert events.types(channel["id"]) == [
        "StasisStart",
        "ChannelStateChange",
        "ChannelHangupRequest",
        "StasisEnd",
    ]
    request = next(e for e in events.events if e["type"] == "ChannelHangupRequest")
    assert request["cause"] == 16 and "soft" not in request


async def test_play_stop_and_hangup_during_playback(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    handle = await sim.place_call(
        "+7916", "100", steps=[WaitPlayback("sound:beep", "finished"), Hangup()]
    )
    channel_id = (await events.wait_for("StasisStart"))["channel"]["id"]
    base = f"{sim.base_url}/channels/{channel_id}"
    async with http.post(
        f"{base}/play", params={"media": "sound:hello-world,digits:12", "playbackId": "pb-1"}
    ) as response:
        assert response.status == 201
        body = await response.json()
        assert body == {
            "id": "pb-1",
            "media_uri": "sound:hello-world",
            "next_media_uri": "digits:12",
            "target_uri": f"channel:{channel_id}",
            "language": "en",
            "state": "queued",
        }
    await events.wait_for("PlaybackContinuing")
    async with http.delete(f"{sim.base_url}/playbacks/pb-1") as response:
        assert response.status == 204
    finished = await events.wait_for("PlaybackFinished", playback__id="pb-1")
    assert finished["playback"]["state"] == "done"
    assert finished["playback"]["media_uri"] == "digits:12"
    async with http.get(f"{sim.base_url}/playbacks/pb-1") as response:
        assert response.status == 404
        assert await response.json() == {"message": "Playback not found"}
    types = [e["type"] for e in events.events if "playback" in e]
    assert types == ["PlaybackStarted", "PlaybackContinuing", "PlaybackStarted", "PlaybackFinished"]
    # A missing sound: Started then Finished failed at once.
    async with http.post(f"{base}/play", params={"media": "sound:no-such"}) as response:
        missing_id = (await response.json())["id"]
    failed = await events.wait_for("PlaybackFinished", playback__id=missing_id)
    assert failed["playback"]["state"] == "failed"
    # The caller hangs up after beep finishes; a long prompt is playing then.
    async with http.post(
        f"{base}/play", params={"media": "sound:beep", "playbackId": "beep"}
    ) as response:
        assert response.status == 201
    async with http.post(
        f"{base}/play", params={"media": "sound:demo-congrats", "playbackId": "long"}
    ) as response:
        assert response.status == 201
    await events.wait_for("PlaybackStarted", playback__id="long")
    transcript = await asyncio.wait_for(handle.ended, 5)
    assert transcript.hungup_by == "caller"
    await events.wait_for("StasisEnd")
    tail = events.types()[-3:]
    assert tail == ["ChannelHangupRequest", "PlaybackFinished", "StasisEnd"]
    assert events.events[-2]["playback"]["state"] == "failed"
    played = [(m["media_uri"], m["state"]) for m in transcript.media]
    assert ("sound:beep", "done") in played and ("sound:demo-congrats", "failed") in played


async def test_answer_blocks_until_playback_ends(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    await sim.place_call("+7916", "101", steps=[Wait(30)])
    channel_id = (await events.wait_for("StasisStart"))["channel"]["id"]
    base = f"{sim.base_url}/channels/{channel_id}"
    async with http.post(f"{base}/play", params={"media": "sound:vm-intro"}):
        pass
    async with http.post(f"{base}/answer") as response:
        assert response.status == 204
    # The answer's state change comes only after the 5.65 s prompt finished.
    order = [
        e["type"] for e in events.events if e["type"] in ("PlaybackFinished", "ChannelStateChange")
    ]
    assert order == ["PlaybackFinished", "ChannelStateChange"]


async def test_dtmf_from_caller_arrives_in_order(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    handle = await sim.place_call(
        "+7916", "102", steps=[WaitAnswered(), SendDtmf("12#"), Wait(0.5), Hangup()]
    )
    channel_id = (await events.wait_for("StasisStart"))["channel"]["id"]
    async with http.post(f"{sim.base_url}/channels/{channel_id}/answer"):
        pass
    transcript = await asyncio.wait_for(handle.ended, 5)
    digits = [e["digit"] for e in events.events if e["type"] == "ChannelDtmfReceived"]
    assert digits == ["1", "2", "#"]
    assert [d["digit"] for d in transcript.dtmf_sent] == ["1", "2", "#"]
    durations = {e["duration_ms"] for e in events.events if e["type"] == "ChannelDtmfReceived"}
    assert durations == {100}


async def test_no_socket_means_stasis_failed_and_trace_fallback(
    sim: Simulator, connect: Connect
) -> None:
    observer = await connect("observer", subscribe_all=True)
    handle = await sim.place_call("+7916", "700", steps=[])
    transcript = await asyncio.wait_for(handle.ended, 5)
    assert transcript.stasis_status == "FAILED"
    assert transcript.hangup_cause == 34
    assert [m["media_uri"] for m in transcript.media] == ["sound:ss-noservice"]
    varsets = [
        e["value"]
        for e in observer.events
        if e["type"] == "ChannelVarset" and e["variable"] == "STASISSTATUS"
    ]
    assert varsets == ["", "FAILED"]
    # The channel was still unanswered when Stasis failed: the Answer comes from the fallback.
    dialplan = [e["dialplan_app"] for e in observer.events if e["type"] == "ChannelDialplan"]
    assert dialplan[:7] == ["NoOp", "Set", "Stasis", "NoOp", "UserEvent", "GotoIf", "Answer"]


async def test_reception_fallback_rings_then_voicemail(tmp_path: pathlib.Path) -> None:
    sim = Simulator(
        recordings_dir=tmp_path / "rec",
        time_scale=0.02,
        fallback_endpoints=("PJSIP/101", "PJSIP/102"),
        fallback_ring_seconds=5,
    )
    await sim.start()
    try:
        sim.add_phone("PJSIP/101", PhoneBehaviour.never_answers())
        sim.add_phone("PJSIP/102", PhoneBehaviour.rejects_busy())
        handle = await sim.place_call("+7916", "555", steps=[WaitAnswered(20), Wait(8), Hangup()])
        transcript = await asyncio.wait_for(handle.ended, 10)
        assert transcript.stasis_status == "FAILED"
        fallback = transcript.fallback
        assert fallback is not None and fallback["voicemail"] is True
        assert [r["result"] for r in fallback["rang"]] == ["ringing", "busy"]
        name = fallback["voicemail_recording"]
        path = tmp_path / "rec" / f"{name}.wav"
        with wave.open(str(path)) as wav:
            seconds = wav.getnframes() / wav.getframerate()
        assert 4 < seconds < 6  # 8 s on the line minus the 3.3 s greeting
        kinds = [entry["kind"] for entry in sim.engine.call_log]
        assert kinds == ["inbound", "fallback", "voicemail"]
        # Reception answering: the caller is connected to the phone, no voicemail.
        sim.add_phone("PJSIP/101", PhoneBehaviour.answers(after=2, hangup_after=3))
        handle = await sim.place_call("+7916", "556", steps=[])
        transcript = await asyncio.wait_for(handle.ended, 10)
        assert transcript.fallback is not None
        assert transcript.fallback["answered_by"] == "PJSIP/101"
        assert transcript.fallback["voicemail"] is False
        assert transcript.hungup_by == "phone"
        assert transcript.bridged[0]["endpoint"] == "PJSIP/101"
    finally:
        await sim.stop()


async def test_app_dtmf_reaches_the_caller_not_the_app(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    handle = await sim.place_call("+7916", "103", steps=[WaitAnswered(), Wait(2), Hangup()])
    channel_id = (await events.wait_for("StasisStart"))["channel"]["id"]
    async with http.post(f"{sim.base_url}/channels/{channel_id}/answer"):
        pass
    async with http.post(
        f"{sim.base_url}/channels/{channel_id}/dtmf", params={"dtmf": "9*"}
    ) as response:
        assert response.status == 204
    transcript = await asyncio.wait_for(handle.ended, 5)
    assert [d["digit"] for d in transcript.dtmf_received] == ["9", "*"]
    assert "ChannelDtmfReceived" not in events.types()


async def test_commands_during_playback_like_trace_09(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    await sim.place_call("+7916", "900", steps=[Wait(60)])
    channel_id = (await events.wait_for("StasisStart"))["channel"]["id"]
    base = f"{sim.base_url}/channels/{channel_id}"
    async with http.post(f"{sim.base_url}/bridges", params={"bridgeId": "br-900"}):
        pass
    async with http.post(f"{base}/play", params={"media": "sound:vm-intro"}):
        pass
    await events.wait_for("PlaybackStarted")
    # Immediate: GET variable, hold/moh (no events at all), dtmf and record return at once.
    async with http.get(f"{base}/variable", params={"variable": "DID"}) as response:
        assert response.status == 200
    for path in ("hold", "moh", "silence"):
        async with http.post(f"{base}/{path}") as response:
            assert response.status == 204
        async with http.delete(f"{base}/{path}") as response:
            assert response.status == 204
    async with http.post(
        f"{base}/record", params={"name": "after", "format": "wav", "maxDurationSeconds": "1"}
    ) as response:
        assert response.status == 201
    assert "RecordingStarted" not in events.types()
    # Blocking: POST variable returns only after the queue ahead of it (the playback and the
    # recording, which holds the channel's control queue like Asterisk's record_file).
    async with http.post(f"{base}/variable", params={"variable": "X", "value": "1"}) as resp:
        assert resp.status == 204
    assert events.types()[-2:] == ["RecordingFinished", "ChannelVarset"]
    async with http.post(
        f"{sim.base_url}/bridges/br-900/addChannel", params={"channel": channel_id}
    ) as response:
        assert response.status == 204
    async with http.post(
        f"{sim.base_url}/bridges/br-900/removeChannel", params={"channel": channel_id}
    ) as response:
        assert response.status == 204
    async with http.post(
        f"{sim.base_url}/bridges/br-900/removeChannel", params={"channel": channel_id}
    ) as response:
        assert response.status == 422
        assert await response.json() == {"message": "Channel not in this bridge"}
    await asyncio.sleep(0.05)
    order = [t for t in events.types() if t not in ("PlaybackStarted",)]
    assert order == [
        "StasisStart",
        "PlaybackFinished",
        "RecordingStarted",
        "RecordingFinished",
        "ChannelVarset",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
    ]
    # After removeChannel the app is no longer subscribed to the bridge (trace 09).
    async with http.delete(f"{sim.base_url}/bridges/br-900") as response:
        assert response.status == 204
    await asyncio.sleep(0.05)
    assert "BridgeDestroyed" not in events.types()
