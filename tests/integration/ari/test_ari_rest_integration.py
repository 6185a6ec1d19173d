"""AriRest against a real HTTP server: requests as Asterisk expects them, errors as our tree."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from pbx_service.ari import (
    AriAuthError,
    AriBadRequest,
    AriClient,
    AriConflict,
    AriConnectionError,
    AriHTTPError,
    AriNotFound,
    AriProtocolError,
    AriServerError,
    AriUnprocessable,
    AriUsageError,
)

from .fake_ari import APP, GOOD_AUTH, PASSWORD, USER, FakeAri, Reply, make_client

CHANNEL = {
    "id": "1795611322.116",
    "name": "Local/100@from-trunk-0000003b;1",
    "state": "Down",
    "protocol_id": "",
    "caller": {"name": "Ivan Petrov", "number": "+79161234567"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {
        "context": "from-trunk",
        "exten": "100",
        "priority": 1,
        "app_name": "AppDial2",
        "app_data": "(Outgoing Line)",
    },
    "creationtime": "2026-11-25T12:55:22.863+0000",
    "language": "en",
    "channelvars": {"DID": "", "CALLERID(name)": "Ivan Petrov"},
}
BRIDGE = {
    "id": "br-300",
    "technology": "simple_bridge",
    "bridge_type": "mixing",
    "bridge_class": "stasis",
    "creator": "Stasis",
    "name": "call-300",
    "channels": [],
    "creationtime": "2026-11-25T12:55:48.422+0000",
    "video_mode": "talker",
}


async def test_channel_commands(fake_ari: FakeAri) -> None:
    fake_ari.reply("POST", "/ari/channels", 200, CHANNEL)
    fake_ari.reply("POST", "/ari/channels/create", 200, CHANNEL)
    fake_ari.reply("GET", "/ari/channels/c%201", 200, CHANNEL)
    fake_ari.reply("GET", "/ari/channels", 200, [CHANNEL, CHANNEL])
    fake_ari.reply("GET", "/ari/channels/c1/variable", 200, {"value": "100"})
    fake_ari.reply("POST", "/ari/channels/c1/snoop", 200, {**CHANNEL, "id": "snoop-1"})
    async with make_client(fake_ari) as client:
        rest = client.rest
        ch = await rest.originate(
            "Local/100@from-trunk",
            app=APP,
            app_args="agent,br-300",
            channel_id="ag-1",
            other_channel_id="ag-1-2",
            originator="cust-1",
            caller_id='"Company — Name" <+74951234567>',
            timeout=30,
            variables={"CONNECTEDLINE(name)": "Клиент"},
        )
        assert ch.id == "1795611322.116" and ch.dialplan.app_name == "AppDial2"
        req = fake_ari.last()
        assert (req.method, req.raw_path) == ("POST", "/ari/channels")
        assert req.query == {
            "endpoint": "Local/100@from-trunk",
            "app": APP,
            "appArgs": "agent,br-300",
            "channelId": "ag-1",
            "otherChannelId": "ag-1-2",
            "originator": "cust-1",
            "callerId": '"Company — Name" <+74951234567>',
            "timeout": "30",
        }
        assert orjson.loads(req.body) == {"variables": {"CONNECTEDLINE(name)": "Клиент"}}
        assert req.authorization == GOOD_AUTH

        await rest.originate("Local/1@x", extension="s", context="rec-continue", priority=1)
        assert fake_ari.last().query == {
            "endpoint": "Local/1@x",
            "extension": "s",
            "context": "rec-continue",
            "priority": "1",
        }
        assert fake_ari.last().body == b""

        await rest.create_channel("Local/301@rec-agent-phone", app=APP, channel_id="ag-e")
        assert fake_ari.last().raw_path == "/ari/channels/create"
        await rest.dial("ag-e", caller="cust-1", timeout=20)
        assert (fake_ari.last().raw_path, fake_ari.last().query) == (
            "/ari/channels/ag-e/dial",
            {"caller": "cust-1", "timeout": "20"},
        )
        assert (await rest.get_channel("c 1")).caller.name == "Ivan Petrov"
        assert [c.id for c in await rest.list_channels()] == [CHANNEL["id"]] * 2

        simple = [
            (rest.answer("c1"), "POST", "/ari/channels/c1/answer", {}),
            (rest.ring("c1"), "POST", "/ari/channels/c1/ring", {}),
            (rest.ring_stop("c1"), "DELETE", "/ari/channels/c1/ring", {}),
            (rest.hangup("c1"), "DELETE", "/ari/channels/c1", {"reason": "normal"}),
            (
                rest.hangup("c1", reason="answered_elsewhere"),
                "DELETE",
                "/ari/channels/c1",
                {"reason": "answered_elsewhere"},
            ),
            (rest.start_moh("c1"), "POST", "/ari/channels/c1/moh", {}),
            (rest.start_moh("c1", "sales"), "POST", "/ari/channels/c1/moh", {"mohClass": "sales"}),
            (rest.stop_moh("c1"), "DELETE", "/ari/channels/c1/moh", {}),
            (rest.hold("c1"), "POST", "/ari/channels/c1/hold", {}),
            (rest.unhold("c1"), "DELETE", "/ari/channels/c1/hold", {}),
            (rest.start_silence("c1"), "POST", "/ari/channels/c1/silence", {}),
            (rest.stop_silence("c1"), "DELETE", "/ari/channels/c1/silence", {}),
            (
                rest.send_dtmf("c1", "23#", between_ms=200, duration_ms=150),
                "POST",
                "/ari/channels/c1/dtmf",
                {"dtmf": "23#", "between": "200", "duration": "150"},
            ),
            (
                rest.set_variable("c1", "CHANNEL(language)", "ru"),
                "POST",
                "/ari/channels/c1/variable",
                {"variable": "CHANNEL(language)", "value": "ru"},
            ),
            (
                rest.continue_in_dialplan("c1", context="rec-continue", extension="s", priority=1),
                "POST",
                "/ari/channels/c1/continue",
                {"context": "rec-continue", "extension": "s", "priority": "1"},
            ),
            (
                rest.continue_in_dialplan("c1", label="lbl"),
                "POST",
                "/ari/channels/c1/continue",
                {"label": "lbl"},
            ),
        ]
        for call, method, path, query in simple:
            await call
            seen = fake_ari.last()
            assert (seen.method, seen.raw_path, seen.query) == (method, path, query)

        assert await rest.get_variable("c1", "DID") == "100"
        assert fake_ari.last().query == {"variable": "DID"}
        snoop = await rest.snoop("c1", app=APP, spy="in", snoop_id="snoop-1")
        assert snoop.id == "snoop-1"
        assert fake_ari.last().query == {
            "app": APP,
            "spy": "in",
            "whisper": "none",
            "snoopId": "snoop-1",
        }


async def test_playback_and_recording_commands(fake_ari: FakeAri) -> None:
    playback = {
        "id": "pb-1",
        "media_uri": "sound:hello-world",
        "next_media_uri": "digits:123",
        "target_uri": "channel:c1",
        "language": "en",
        "state": "queued",
    }
    recording = {
        "name": "voicemail/400/msg-1",
        "format": "wav",
        "state": "queued",
        "target_uri": "channel:c1",
    }
    fake_ari.reply("POST", "/ari/channels/c1/play", 201, playback)
    fake_ari.reply("POST", "/ari/channels/c1/play/pb-1", 201, playback)
    fake_ari.reply("POST", "/ari/bridges/br-300/play/pb-b", 201, {**playback, "id": "pb-b"})
    fake_ari.reply("POST", "/ari/channels/c1/record", 201, recording)
    fake_ari.reply("POST", "/ari/bridges/br-300/record", 201, {**recording, "name": "call-300"})
    fake_ari.reply("GET", "/ari/recordings/stored/voicemail%2F400%2Fmsg-1/file", 200, b"RIFF..")
    async with make_client(fake_ari) as client:
        rest = client.rest
        pb = await rest.play("c1", ["sound:hello-world", "digits:123", "number:42"], lang="ru")
        assert (pb.id, pb.state, pb.next_media_uri) == ("pb-1", "queued", "digits:123")
        assert fake_ari.last().query == {
            "media": "sound:hello-world,digits:123,number:42",
            "lang": "ru",
        }
        await rest.play("c1", "sound:x", playback_id="pb-1")
        assert (fake_ari.last().raw_path, fake_ari.last().query) == (
            "/ari/channels/c1/play/pb-1",
            {"media": "sound:x"},
        )
        assert (await rest.play_on_bridge("br-300", "sound:y", playback_id="pb-b")).id == "pb-b"
        await rest.stop_playback("pb-1")
        assert (fake_ari.last().method, fake_ari.last().raw_path) == (
            "DELETE",
            "/ari/playbacks/pb-1",
        )
        await rest.control_playback("pb-1", "pause")
        assert fake_ari.last().query == {"operation": "pause"}

        rec = await rest.record(
            "c1",
            "voicemail/400/msg-1",
            max_duration_seconds=120,
            max_silence_seconds=5,
            beep=True,
            terminate_on="#",
        )
        assert rec.name == "voicemail/400/msg-1" and rec.state == "queued"
        assert fake_ari.last().query == {
            "name": "voicemail/400/msg-1",
            "format": "wav",
            "maxDurationSeconds": "120",
            "maxSilenceSeconds": "5",
            "ifExists": "fail",
            "beep": "true",
            "terminateOn": "#",
        }
        await rest.record_bridge("br-300", "call-300", if_exists="overwrite")
        assert fake_ari.last().query["beep"] == "false"
        assert fake_ari.last().query["ifExists"] == "overwrite"

        # A '/' in a recording name must travel as %2F or Asterisk answers 404.
        await rest.stop_recording("voicemail/400/msg-1")
        assert fake_ari.last().raw_path == "/ari/recordings/live/voicemail%2F400%2Fmsg-1/stop"
        await rest.cancel_recording("voicemail/400/msg-1")
        assert (fake_ari.last().method, fake_ari.last().raw_path) == (
            "DELETE",
            "/ari/recordings/live/voicemail%2F400%2Fmsg-1",
        )
        data = await rest.get_stored_recording_file("voicemail/400/msg-1")
        assert data == b"RIFF.."
        await rest.delete_stored_recording("voicemail/400/msg-1")
        assert fake_ari.last().raw_path == "/ari/recordings/stored/voicemail%2F400%2Fmsg-1"


async def test_bridge_device_state_and_asterisk_commands(fake_ari: FakeAri) -> None:
    fake_ari.reply("POST", "/ari/bridges", 200, BRIDGE)
    fake_ari.reply("GET", "/ari/bridges/br-300", 200, {**BRIDGE, "channels": ["a", "b"]})
    fake_ari.reply("GET", "/ari/bridges", 200, [BRIDGE])
    fake_ari.reply(
        "GET", "/ari/deviceStates/Stasis:pbx-callbacks", 200, {"name": "x", "state": "UNKNOWN"}
    )
    fake_ari.reply("GET", "/ari/endpoints", 200, [{"technology": "PJSIP", "resource": "101"}])
    fake_ari.reply("GET", "/ari/asterisk/info", 200, {"system": {"version": "22.10.1"}})
    async with make_client(fake_ari) as client:
        rest = client.rest
        br = await rest.create_bridge("br-300", name="call-300")
        assert br.bridge_class == "stasis"
        assert fake_ari.last().query == {"type": "mixing", "bridgeId": "br-300", "name": "call-300"}
        await rest.create_bridge(type="holding")
        assert fake_ari.last().query == {"type": "holding"}
        assert (await rest.get_bridge("br-300")).channels == ("a", "b")
        assert [b.id for b in await rest.list_bridges()] == ["br-300"]

        await rest.add_channel("br-300", ["c1", "ag-1"], inhibit_connected_line_updates=True)
        assert (fake_ari.last().raw_path, fake_ari.last().query) == (
            "/ari/bridges/br-300/addChannel",
            {"channel": "c1,ag-1", "inhibitConnectedLineUpdates": "true"},
        )
        await rest.add_channel("br-300", "c1")
        assert fake_ari.last().query == {"channel": "c1"}
        await rest.remove_channel("br-300", "c1")
        assert fake_ari.last().query == {"channel": "c1"}
        await rest.start_bridge_moh("br-300", "default")
        assert fake_ari.last().query == {"mohClass": "default"}
        await rest.stop_bridge_moh("br-300")
        await rest.destroy_bridge("br-300")
        assert (fake_ari.last().method, fake_ari.last().raw_path) == (
            "DELETE",
            "/ari/bridges/br-300",
        )

        await rest.set_device_state("Stasis:pbx-callbacks", "BUSY")
        assert (fake_ari.last().method, fake_ari.last().raw_path, fake_ari.last().query) == (
            "PUT",
            "/ari/deviceStates/Stasis:pbx-callbacks",
            {"deviceState": "BUSY"},
        )
        assert await rest.get_device_state("Stasis:pbx-callbacks") == "UNKNOWN"
        assert (await rest.list_endpoints())[0].resource == "101"
        assert (await rest.ping())["ping"] == "pong"
        assert (await rest.asterisk_info(only="system"))["system"]["version"] == "22.10.1"
        assert fake_ari.last().query == {"only": "system"}

        # The generic request: any method and an already encoded path.
        fake_ari.reply("GET", "/ari/sounds/vm-intro", 200, {"id": "vm-intro"})
        assert await client.rest.request("GET", "/sounds/vm-intro") == {"id": "vm-intro"}
        assert await client.rest.request("POST", "/channels/c1/progress", expect="none") is None


@pytest.mark.parametrize(
    ("status", "body", "cls", "message", "gone"),
    [
        (404, {"message": "Channel not found"}, AriNotFound, "Channel not found", True),
        (
            409,
            {"message": "Channel not in Stasis application"},
            AriConflict,
            "Channel not in Stasis application",
            True,
        ),
        (
            422,
            {"message": "Channel not in Stasis application"},
            AriUnprocessable,
            "Channel not in Stasis application",
            True,
        ),
        (500, {"error": "Allocation failed"}, AriServerError, "Allocation failed", False),
        (400, {"message": "Variable name is required"}, AriBadRequest, None, False),
        (
            422,
            {"message": "Channel not in this bridge"},
            AriUnprocessable,
            "Channel not in this bridge",
            False,
        ),
        (405, {"message": "Invalid method"}, AriHTTPError, "Invalid method", False),
    ],
)
async def test_http_errors_map_to_the_tree(
    fake_ari: FakeAri,
    status: int,
    body: dict[str, str],
    cls: type[AriHTTPError],
    message: str | None,
    gone: bool,
) -> None:
    fake_ari.reply("GET", "/ari/channels/c1/variable", status, body)
    async with make_client(fake_ari) as client:
        with pytest.raises(AriHTTPError) as info:
            await client.rest.get_variable("c1", "CALLERID(name)")
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.message == (message or body["message"])
    assert (err.method, err.path) == ("GET", "/channels/c1/variable")
    assert err.means_channel_gone is gone


async def test_wrong_password_is_an_auth_error(fake_ari: FakeAri) -> None:
    async with make_client(fake_ari, password="wrong") as client:
        with pytest.raises(AriAuthError) as info:
            await client.rest.answer("c1")
    assert info.value.status == 401
    assert info.value.message == "Authentication required"


async def test_transport_failures_are_connection_errors(fake_ari: FakeAri) -> None:
    # A port with nothing listening: connection refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    async with AriClient(f"http://127.0.0.1:{free_port}/ari", USER, PASSWORD, APP) as client:
        with pytest.raises(AriConnectionError) as refused:
            await client.rest.answer("c1")
    assert refused.value.__cause__ is not None

    fake_ari.replies[("POST", "/ari/channels/c1/answer")] = Reply(hang=True)
    async with make_client(fake_ari, request_timeout=0.2) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(AriConnectionError, match=r"no answer within 0\.2s"):
            await client.rest.answer("c1")
        assert asyncio.get_running_loop().time() - started < 1.5


async def test_non_json_success_body_is_a_protocol_error(fake_ari: FakeAri) -> None:
    fake_ari.reply("GET", "/ari/channels/c1", 200, b"<html>")
    async with make_client(fake_ari) as client:
        with pytest.raises(AriProtocolError):
            await client.rest.get_channel("c1")


async def test_bad_arguments_are_refused_before_sending(fake_ari: FakeAri) -> None:
    async with make_client(fake_ari) as client:
        with pytest.raises(AriUsageError):
            await client.rest.answer("")
        with pytest.raises(AriUsageError):
            await client.rest.play("c1", [])
        with pytest.raises(AriUsageError):
            await client.rest.add_channel("br", [])
    assert fake_ari.requests == []


async def test_variables_subscriptions_and_device_state_delete(fake_ari: FakeAri) -> None:
    fake_ari.reply(
        "GET",
        "/ari/channels/c1/variables",
        200,
        {"variables": {"CALLERID(num)": "+7916", "CHANNEL(language)": "en"}},
    )
    app_object = {"name": APP, "device_names": ["Stasis:pbx-callbacks"]}
    fake_ari.reply("POST", f"/ari/applications/{APP}/subscription", 200, app_object)
    fake_ari.reply("DELETE", f"/ari/applications/{APP}/subscription", 200, app_object)
    async with make_client(fake_ari) as client:
        rest = client.rest
        await rest.set_variables("c1", {"A": "a", "CALLERID(name)": "Multi Name"})
        assert orjson.loads(fake_ari.last().body) == {
            "variables": {"A": "a", "CALLERID(name)": "Multi Name"}
        }
        got = await rest.get_variables("c1", ["CALLERID(num)", "CHANNEL(language)"])
        assert got == {"CALLERID(num)": "+7916", "CHANNEL(language)": "en"}
        assert fake_ari.last().query == {"variables": "CALLERID(num),CHANNEL(language)"}
        sub = await rest.subscribe(APP, "deviceState:Stasis:pbx-callbacks")
        assert sub["device_names"] == ["Stasis:pbx-callbacks"]
        assert fake_ari.last().query == {"eventSource": "deviceState:Stasis:pbx-callbacks"}
        await rest.unsubscribe(APP, "deviceState:Stasis:pbx-callbacks")
        assert fake_ari.last().method == "DELETE"
        await rest.delete_device_state("Stasis:pbx-callbacks")
        assert (fake_ari.last().method, fake_ari.last().raw_path) == (
            "DELETE",
            "/ari/deviceStates/Stasis:pbx-callbacks",
        )
        await rest.progress("c1")
        assert fake_ari.last().raw_path == "/ari/channels/c1/progress"
        await rest.redirect("c1", "Local/500@test-ring")
        assert fake_ari.last().query == {"endpoint": "Local/500@test-ring"}


async def test_observer_sees_each_request_with_the_lag_of_the_event_that_caused_it(
    fake_ari: FakeAri,
) -> None:
    """`probe.mark` + `AriRest.observer`: the first request after an event carries the time
    since the event was read; a later request (a timer's) carries None."""
    from pbx_service.ari import AriEvent, probe

    fake_ari.reply("POST", "/ari/channels/c1/answer", 204, None)
    seen: list[tuple[str, str, float | None]] = []
    async with make_client(fake_ari) as client:
        rest = client.rest
        rest.observer = lambda method, path, lag: seen.append((method, path, lag))

        async def call_task() -> None:
            event = AriEvent({"type": "StasisStart", "channel": CHANNEL})
            await asyncio.sleep(0.02)
            probe.mark(event.received)
            await rest.answer("c1")
            await rest.answer("c1")
            probe.mark(event.received)
            probe.clear()  # the wait timed out: a timer's command, not the event's
            await rest.answer("c1")

        await asyncio.create_task(call_task())
        await rest.answer("c1")  # another task: nothing marked there
    assert [(m, p) for m, p, _ in seen] == [("POST", "/channels/c1/answer")] * 4
    lags = [lag for _, _, lag in seen]
    assert lags[0] is not None and 0.02 <= lags[0] < 1.0
    assert lags[1:] == [None, None, None]
