"""Originating: Local halves (trace 01/05 order), phones with each behaviour, ring-all."""

from __future__ import annotations

import asyncio
import pathlib

import aiohttp

from pbx_service.simulator import PhoneBehaviour, Simulator
from tests.simulator.conftest import AUTH_HEADERS, Connect


async def test_local_originate_like_trace_01(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    caller = await connect("caller-sim")
    async with http.post(
        f"{sim.base_url}/channels",
        params={
            "endpoint": "Local/100@from-trunk",
            "app": "caller-sim",
            "appArgs": "role=caller",
            "callerId": '"Ivan \\"P\\"" <+79161234567>',
            "timeout": "30",
        },
        json={"variables": {"X_TEST_VAR": "abc"}},
    ) as response:
        assert response.status == 200
        first = await response.json()
    assert first["name"].endswith(";1") and first["state"] == "Down"
    assert first["dialplan"]["app_name"] == "AppDial2"
    assert first["caller"] == {"name": 'Ivan "P"', "number": "+79161234567"}
    start = await pbx.wait_for("StasisStart")
    second = start["channel"]
    epoch, n = first["id"].split(".")
    assert second["id"] == f"{epoch}.{int(n) + 1}"
    assert second["state"] == "Ring" and start["args"] == ["did=100"]
    await caller.wait_for("ChannelVarset", variable="STASISSTATUS")
    assert caller.types()[:4] == [
        "ChannelVarset",
        "ChannelCallerId",
        "ChannelConnectedLine",
        "Dial",
    ]
    async with http.post(f"{sim.base_url}/channels/{second['id']}/answer") as response:
        assert response.status == 204
    caller_start = await caller.wait_for("StasisStart")
    assert caller_start["channel"]["id"] == first["id"]
    assert caller_start["args"] == ["role=caller"]
    dials = [e["dialstatus"] for e in caller.events if e["type"] == "Dial"]
    assert dials == ["", "ANSWER"]
    async with http.delete(
        f"{sim.base_url}/channels/{second['id']}", params={"reason": "normal"}
    ) as response:
        assert response.status == 204
    await caller.wait_for("ChannelDestroyed", channel__id=first["id"])
    # App hangup: 32/soft then StasisEnd, and no ChannelDestroyed for the dialplan channel.
    assert pbx.types()[-2:] == ["ChannelHangupRequest", "StasisEnd"]
    assert pbx.events[-2]["cause"] == 32 and pbx.events[-2]["soft"] is True
    assert "ChannelDestroyed" not in pbx.types()
    destroyed = [e for e in caller.events if e["type"] == "ChannelDestroyed"]
    assert [(e["channel"]["id"], e["cause"], e["cause_txt"]) for e in destroyed] == [
        (second["id"], 16, "Normal Clearing"),
        (first["id"], 16, "Normal Clearing"),
    ]


async def test_originate_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    cases = [
        ({"endpoint": "PJSIP/nobody", "app": "a"}, 500, {"error": "Allocation failed"}),
        ({"endpoint": "NoSuchTech/abc", "app": "a"}, 500, {"error": "Allocation failed"}),
        ({"endpoint": "garbage", "app": "a"}, 400, {"message": "Invalid endpoint specified"}),
        ({"app": "a"}, 400, {"message": "Endpoint must be specified"}),
        (
            {"endpoint": "Local/100@from-trunk"},
            400,
            {"message": "Application or extension must be specified"},
        ),
    ]
    for params, status, body in cases:
        async with http.post(f"{sim.base_url}/channels", params=params) as response:
            assert response.status == status, params
            assert await response.json() == body


async def test_channel_id_prefix_rule(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    await connect("pbx-service")
    url = f"{sim.base_url}/channels"
    base = {"endpoint": "Local/500@test-ring", "app": "pbx-service"}
    async with http.post(
        url, params={**base, "channelId": "c16-01", "otherChannelId": "c16-01-2"}
    ) as response:
        assert response.status == 200
    for taken in ("c16-0", "C16-01", "c16-01-"):
        async with http.post(url, params={**base, "channelId": taken}) as response:
            assert response.status == 409
            assert await response.json() == {
                "message": "Channel with given unique ID already exists"
            }
    async with http.post(url, params={**base, "channelId": "c16-011"}) as response:
        assert response.status == 200
    async with http.get(f"{url}/C16-01") as response:
        assert (await response.json())["id"] == "c16-01"
    async with http.get(f"{url}/c16-0") as response:
        assert response.status == 404


async def test_originate_to_phones_each_behaviour(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    sim.add_phone("PJSIP/101", PhoneBehaviour.answers(after=1, hangup_after=2))
    sim.add_phone("PJSIP/102", PhoneBehaviour.never_answers())
    sim.add_phone("PJSIP/103", PhoneBehaviour.rejects_busy())
    sim.add_phone("PJSIP/104", PhoneBehaviour.offline())
    sim.add_phone("PJSIP/105", PhoneBehaviour.answers_then_dtmf("42", after=0.5))

    async def originate(endpoint: str, **extra: str) -> aiohttp.ClientResponse:
        params = {
            "endpoint": endpoint,
            "app": "pbx-service",
            "appArgs": "agent,x",
            "callerId": "PBX <100>",
            **extra,
        }
        return await http.post(f"{sim.base_url}/channels", params=params)

    answered = await (await originate("PJSIP/101")).json()
    start = await pbx.wait_for("StasisStart", channel__id=answered["id"])
    assert start["args"] == ["agent", "x"] and start["channel"]["state"] == "Up"
    destroyed = await pbx.wait_for("ChannelDestroyed", channel__id=answered["id"])
    assert destroyed["cause"] == 16
    assert pbx.types(answered["id"]) == [
        "Dial",
        "ChannelStateChange",
        "Dial",
        "ChannelStateChange",
        "Dial",
        "ChannelVarset",
        "StasisStart",
        "ChannelHangupRequest",
        "StasisEnd",
        "ChannelVarset",
        "ChannelDestroyed",
    ]

    ringing = await (await originate("PJSIP/102", timeout="1")).json()
    gone = await pbx.wait_for("ChannelDestroyed", channel__id=ringing["id"])
    assert (gone["cause"], gone["cause_txt"]) == (19, "User alerting, no answer")

    busy = await (await originate("PJSIP/103")).json()
    gone = await pbx.wait_for("ChannelDestroyed", channel__id=busy["id"])
    assert gone["cause"] == 17
    assert [
        e["dialstatus"] for e in pbx.events if e["type"] == "Dial" and e["peer"]["id"] == busy["id"]
    ] == ["", "BUSY"]

    offline = await originate("PJSIP/104")
    assert offline.status == 500
    assert await offline.json() == {"error": "Allocation failed"}

    dtmf = await (await originate("PJSIP/105")).json()
    await pbx.wait_for("ChannelDtmfReceived", channel__id=dtmf["id"], digit="2")
    digits = [e["digit"] for e in pbx.events if e["type"] == "ChannelDtmfReceived"]
    assert digits == ["4", "2"]
    assert sim.engine.phones["PJSIP/105"].calls[0]["result"] == "answered"


async def test_ring_all_cancel_reasons(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    await connect("caller-sim")
    for n in (1, 2, 3, 4):
        async with http.post(
            f"{sim.base_url}/channels",
            params={
                "endpoint": f"Local/40{n}@rec-agent-phone",
                "app": "pbx-service",
                "appArgs": "agent",
                "channelId": f"ra-40{n}",
                "otherChannelId": f"ra-40{n}-2",
            },
        ) as response:
            assert response.status == 200
    for n in (1, 2, 3, 4):
        async with http.post(f"{sim.base_url}/channels/ra-40{n}-2/ring") as response:
            assert response.status == 204
    await pbx.wait_for("Dial", peer__id="ra-404", dialstatus="RINGING")
    reasons = {
        "ra-401": None,
        "ra-402": "answered_elsewhere",
        "ra-403": "busy",
        "ra-404": "no_answer",
    }
    for channel_id, reason in reasons.items():
        params = {"reason": reason} if reason else {}
        async with http.delete(f"{sim.base_url}/channels/{channel_id}", params=params) as response:
            assert response.status == 204
    expected = {
        "ra-401": (16, "NOANSWER"),
        "ra-402": (26, "NOANSWER"),
        "ra-403": (17, "BUSY"),
        "ra-404": (19, "NOANSWER"),
    }
    for channel_id, (cause, status) in expected.items():
        await pbx.wait_for("ChannelDestroyed", channel__id=f"{channel_id}-2")
        leg = [
            e
            for e in pbx.events
            if channel_id
            in (
                (e.get("channel") or {}).get("id"),
                (e.get("peer") or {}).get("id"),
                ((e.get("channel") or {}).get("id") or "")[:-2],
            )
        ]
        leg = [e for e in leg if e["type"] in ("ChannelHangupRequest", "Dial", "ChannelDestroyed")][
            -6:
        ]
        summary = [
            (
                e["type"],
                (e.get("channel") or e.get("peer") or {})["id"],
                e.get("cause", e.get("dialstatus")),
                e.get("soft"),
            )
            for e in leg
        ]
        assert summary == [
            ("ChannelHangupRequest", channel_id, 32, True),
            ("Dial", channel_id, status, None),
            ("ChannelHangupRequest", f"{channel_id}-2", cause, None),
            ("ChannelDestroyed", channel_id, cause, None),
            ("ChannelHangupRequest", f"{channel_id}-2", 16, True),
            ("ChannelDestroyed", f"{channel_id}-2", cause, None),
        ], channel_id


async def test_local_busy_congestion_and_missing_extension(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    for endpoint, cause in (("Local/501@test-busy", 17), ("Local/502@test-congestion", 34)):
        async with http.post(
            f"{sim.base_url}/channels", params={"endpoint": endpoint, "app": "pbx-service"}
        ) as response:
            first = await response.json()
        second = await pbx.wait_for("ChannelDestroyed", channel__name=first["name"][:-1] + "2")
        assert second["cause"] == cause
        one = [
            e
            for e in pbx.events
            if e["type"] == "ChannelDestroyed" and e["channel"]["id"] == first["id"]
        ]
        assert one[0]["cause"] == 0
    async with http.post(
        f"{sim.base_url}/channels",
        params={"endpoint": "Local/1@no-such-context", "app": "pbx-service"},
    ) as response:
        assert response.status == 200
        first = await response.json()
    gone = await pbx.wait_for("ChannelDestroyed", channel__id=first["id"])
    assert gone["cause"] == 0 and gone["cause_txt"] == "Unknown"
    await asyncio.sleep(0)


async def test_outside_numbers_behind_the_trunk(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    pbx = await connect("pbx-service")
    sim.add_phone("PJSIP/+74950000000@trunk", PhoneBehaviour.answers(after=0.5))
    async with http.post(
        f"{sim.base_url}/channels",
        params={"endpoint": "PJSIP/+74950000000@trunk", "app": "pbx-service"},
    ) as response:
        answered = await response.json()
    assert answered["name"].startswith("PJSIP/trunk-")
    await pbx.wait_for("StasisStart", channel__id=answered["id"])
    # A number without a registered phone rings until the originate timeout.
    async with http.post(
        f"{sim.base_url}/channels",
        params={"endpoint": "PJSIP/+79990000000@trunk", "app": "pbx-service", "timeout": "1"},
    ) as response:
        ringing = await response.json()
    await pbx.wait_for("Dial", peer__id=ringing["id"], dialstatus="RINGING")
    gone = await pbx.wait_for("ChannelDestroyed", channel__id=ringing["id"])
    assert gone["cause"] == 19
    async with http.post(
        f"{sim.base_url}/channels",
        params={"endpoint": "PJSIP/+7999@nosuchtrunk", "app": "pbx-service"},
    ) as response:
        assert response.status == 500


async def test_client_timeouts_wall_clock_or_scaled(tmp_path: pathlib.Path) -> None:
    """The originate `timeout` runs on the wall clock unless scale_client_timeouts=True."""
    seconds: dict[bool, float] = {}
    for scaled in (False, True):
        sim = Simulator(
            recordings_dir=tmp_path / str(scaled), time_scale=0.1, scale_client_timeouts=scaled
        )
        sim.add_phone("PJSIP/102", PhoneBehaviour.never_answers())
        await sim.start()
        try:
            async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
                connect = Connect(sim, http)
                pbx = await connect("pbx-service")
                loop = asyncio.get_running_loop()
                started = loop.time()
                async with http.post(
                    f"{sim.base_url}/channels",
                    params={"endpoint": "PJSIP/102", "app": "pbx-service", "timeout": "1"},
                ) as response:
                    channel_id = (await response.json())["id"]
                gone = await pbx.wait_for("ChannelDestroyed", channel__id=channel_id)
                seconds[scaled] = loop.time() - started
                assert gone["cause"] == 19
                await pbx.close()
        finally:
            await sim.stop()
    assert seconds[False] >= 0.95
    assert seconds[True] < 0.5
