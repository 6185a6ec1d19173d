"""AriClient's events socket against a real WebSocket server: order, reconnect, liveness."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import socket
import traceback

import orjson
import pytest

from pbx_service.ari import AriClient, AriConnectionError, AriError, AriEvent, EventDispatcher

from .fake_ari import (
    APP,
    PASSWORD,
    USER,
    FakeAri,
    RecordingListener,
    Reply,
    eventually,
    make_client,
    running,
)


def dtmf(channel: str, digit: str, seq: int) -> str:
    return orjson.dumps(
        {
            "type": "ChannelDtmfReceived",
            "timestamp": "2026-11-25T12:55:36.351+0000",
            "digit": digit,
            "duration_ms": 100,
            "seq": seq,
            "channel": {"id": channel, "name": "Local/200@from-trunk-0000003c;2", "state": "Up"},
            "asterisk_id": "02:fc:00:00:00:01",
            "application": APP,
        }
    ).decode()


async def test_events_arrive_in_socket_order(fake_ari: FakeAri) -> None:
    fake_ari.greeting = [
        dtmf("c1" if i % 3 else "c2", "0123456789#*"[i % 12], i) for i in range(500)
    ]
    listener = RecordingListener()
    async with running(make_client(fake_ari), listener) as client:
        await client.wait_connected(2)
        assert client.connected
        await eventually(lambda: len(listener.events) == 500)
        assert [e.raw["seq"] for e in listener.events] == list(range(500))
        assert listener.connects == [False]
        # The socket carries the app and the auth header, never the password in the URL.
        assert fake_ari.ws_queries == [{"app": APP}]
        assert (
            fake_ari.ws_auth[0]
            == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        )
        # Events sent later arrive too.
        await fake_ari.send(dtmf("c1", "5", 500))
        await eventually(lambda: len(listener.events) == 501)
    assert not client.connected
    assert listener.disconnects == 1


async def test_subscribe_all_and_url_without_ari_suffix(fake_ari: FakeAri) -> None:
    root = fake_ari.url.removesuffix("/ari")
    client = AriClient(root + "/", USER, PASSWORD, APP, subscribe_all=True)
    async with running(client, RecordingListener()):
        await client.wait_connected(2)
        assert (await client.rest.ping())["ping"] == "pong"
    assert fake_ari.ws_queries == [{"app": APP, "subscribeAll": "true"}]


async def test_per_call_queues_keep_order_through_the_client(fake_ari: FakeAri) -> None:
    fake_ari.greeting = [dtmf(f"c{i % 4}", "0123456789"[i % 10], i) for i in range(200)]
    unrouted: list[AriEvent] = []
    dispatcher = EventDispatcher(unrouted.append, queue_size=8)
    queues = {f"c{i}": dispatcher.new_queue() for i in range(4)}
    for key, q in queues.items():
        dispatcher.route(key, q)
    got: dict[str, list[int]] = {k: [] for k in queues}

    async def consume(key: str) -> None:
        while True:
            ev = await queues[key].get()
            got[key].append(ev.raw["seq"])

    class Listener(RecordingListener):
        async def on_event(self, event: AriEvent) -> None:
            await dispatcher.dispatch(event)

    consumers = [asyncio.create_task(consume(k)) for k in queues]
    try:
        async with running(make_client(fake_ari), Listener()):
            await eventually(lambda: sum(map(len, got.values())) == 200)
    finally:
        for c in consumers:
            c.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
    for i, key in enumerate(sorted(got)):
        assert got[key] == list(range(i, 200, 4))
    assert unrouted == []


async def test_reconnects_with_growing_backoff_when_the_server_closes(fake_ari: FakeAri) -> None:
    fake_ari.ws_modes = ["close"] * 5
    fake_ari.greeting = [dtmf("c1", "1", 0)]
    listener = RecordingListener()
    async with running(make_client(fake_ari, reconnect_max_delay=0.5), listener):
        await eventually(lambda: len(fake_ari.connect_times) >= 6, timeout=5)
        await eventually(lambda: len(listener.connects) >= 6)
    t = fake_ari.connect_times
    gaps = [b - a for a, b in itertools.pairwise(t)]
    # 0.05 s doubling with +-25 % jitter, capped at 0.5 s.
    assert 0.03 <= gaps[0] <= 0.3
    assert gaps[2] > gaps[0]
    assert gaps[3] > gaps[1]
    assert max(gaps) <= 0.5 + 0.3
    assert listener.connects[0] is False and all(listener.connects[1:])
    assert listener.disconnects >= 5
    assert len(listener.events) >= 6  # the greeting of every connection


async def test_dead_peer_is_detected_by_our_ping(fake_ari: FakeAri) -> None:
    # The server keeps TCP open but neither reads nor answers PINGs; REST still answers.
    fake_ari.ws_modes = ["dead"]
    listener = RecordingListener()
    async with running(make_client(fake_ari), listener) as client:
        await eventually(lambda: len(fake_ari.connect_times) == 1)
        await eventually(lambda: len(fake_ari.connect_times) == 2, timeout=3)
        detected = fake_ari.connect_times[1] - fake_ari.connect_times[0]
        # ping_interval 0.2 + ping_timeout 0.2, plus the bounded close and one backoff step.
        assert detected < 0.2 + 0.2 + 0.8
        assert detected >= 0.4
        await client.wait_connected(2)
        assert listener.connects == [False, True]
        assert listener.disconnects == 1
        # The new connection is healthy: it stays up across several ping cycles.
        await asyncio.sleep(0.7)
        assert len(fake_ari.connect_times) == 2
        await fake_ari.send(dtmf("c1", "9", 1))
        await eventually(lambda: [e.digit for e in listener.events] == ["9"])


@pytest.mark.parametrize(
    "ping_reply",
    [Reply(500, {"message": "boom"}), Reply(hang=True), Reply(401, {"message": "no"})],
    ids=["error-500", "no-answer", "auth-401"],
)
async def test_rest_ping_failure_triggers_reconnect(fake_ari: FakeAri, ping_reply: Reply) -> None:
    listener = RecordingListener()
    async with running(make_client(fake_ari), listener) as client:
        await client.wait_connected(2)
        await asyncio.sleep(0.5)  # healthy pings do not disturb the socket
        assert len(fake_ari.connect_times) == 1
        fake_ari.ping_reply = ping_reply
        await eventually(lambda: listener.disconnects >= 1, timeout=3)
        fake_ari.ping_reply = Reply(200, {"ping": "pong"})
        await eventually(lambda: len(fake_ari.connect_times) >= 2, timeout=3)
        # The server sees the new socket a moment before the client reports it.
        await eventually(lambda: len(listener.connects) >= 2, timeout=3)
    assert listener.connects[:2] == [False, True]


async def test_slow_listener_is_not_mistaken_for_a_dead_peer(fake_ari: FakeAri) -> None:
    listener = RecordingListener()
    listener.hold_seconds = 0.7  # longer than ping_interval + ping_timeout
    async with running(make_client(fake_ari), listener) as client:
        await client.wait_connected(2)
        await fake_ari.send(dtmf("c1", "1", 0))
        await fake_ari.send(dtmf("c1", "2", 1))
        await eventually(lambda: len(listener.events) == 2, timeout=3)
        await asyncio.sleep(0.8)
    assert len(fake_ari.connect_times) == 1
    assert listener.disconnects == 1  # only the final close


async def test_malformed_frames_are_skipped_and_logged_once_per_kind(
    fake_ari: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    fake_ari.greeting = [
        "this is not json",
        "{broken",
        b"\x00\x01binary",
        '{"channel": {"id": "c1"}}',
        "[1, 2, 3]",
        '{"type": "SomethingAsteriskAddsLater", "application": "pbx-service"}',
        dtmf("c1", "7", 0),
    ]
    listener = RecordingListener()
    with caplog.at_level(logging.WARNING, logger="pbx_service.ari"):
        async with running(make_client(fake_ari), listener) as client:
            await eventually(lambda: len(listener.events) == 2)
            assert [e.type for e in listener.events] == [
                "SomethingAsteriskAddsLater",
                "ChannelDtmfReceived",
            ]
            assert client.bad_frames == {"not-json": 2, "binary": 1, "no-type": 1, "not-object": 1}
            await asyncio.sleep(0.3)
            assert client.connect_count == 1
    frame_warnings = [r for r in caplog.records if "not an ARI event" in r.getMessage()]
    assert len(frame_warnings) == 4


async def test_application_replaced_reconnects(
    fake_ari: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    listener = RecordingListener()
    with caplog.at_level(logging.WARNING, logger="pbx_service.ari"):
        async with running(make_client(fake_ari), listener) as client:
            await client.wait_connected(2)
            await fake_ari.send(
                '{"type": "ApplicationReplaced", "timestamp": "2026-11-25T12:57:36.206+0000",'
                ' "application": "pbx-service", "asterisk_id": "02:fc:00:00:00:01"}'
            )
            await eventually(lambda: len(fake_ari.connect_times) == 2)
            await client.wait_connected(2)
    assert listener.events[0].type == "ApplicationReplaced"
    assert listener.connects == [False, True]
    assert any("took over" in r.getMessage() for r in caplog.records)


async def test_close_ends_run_even_while_disconnected(fake_ari: FakeAri) -> None:
    client = make_client(fake_ari, password="wrong", reconnect_initial_delay=5.0)
    listener = RecordingListener()
    async with client:
        task = asyncio.create_task(client.run(listener))
        with pytest.raises(AriConnectionError, match="not connected"):
            await client.wait_connected(0.3)
        await client.close()
        await asyncio.wait_for(task, 1)
    assert listener.connects == [] and listener.disconnects == 0


async def test_listener_errors_do_not_stop_the_reader(
    fake_ari: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(RecordingListener):
        async def on_event(self, event: AriEvent) -> None:
            await super().on_event(event)
            if event.digit == "1":
                raise RuntimeError("handler bug")

    fake_ari.greeting = [dtmf("c1", "1", 0), dtmf("c1", "2", 1)]
    listener = Flaky()
    with caplog.at_level(logging.ERROR, logger="pbx_service.ari"):
        async with running(make_client(fake_ari), listener):
            await eventually(lambda: len(listener.events) == 2)
    assert any(r.exc_info for r in caplog.records)


async def test_password_never_leaks(fake_ari: FakeAri, caplog: pytest.LogCaptureFixture) -> None:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    wrong_token = base64.b64encode(f"{USER}:{PASSWORD}-wrong".encode()).decode()
    secrets = (PASSWORD, token, wrong_token)
    raised: list[BaseException] = []
    caplog.set_level(logging.DEBUG)

    # Refused socket handshakes and REST calls with a wrong password.
    wrong = make_client(fake_ari, password=PASSWORD + "-wrong")
    async with running(wrong, RecordingListener()):
        with pytest.raises(AriError) as info:
            await wrong.rest.get_channel("c1")
        raised.append(info.value)
        with pytest.raises(AriError) as info:
            await wrong.wait_connected(0.3)
        raised.append(info.value)
        assert repr(wrong).count(PASSWORD) == 0

    # Liveness failures, timeouts, a dead peer and bad frames with the right password.
    fake_ari.ws_modes = ["dead"]
    fake_ari.greeting = ["not json"]
    listener = RecordingListener()
    async with running(make_client(fake_ari, request_timeout=0.3), listener) as client:
        await eventually(lambda: len(fake_ari.connect_times) >= 2, timeout=3)
        fake_ari.replies[("GET", "/ari/channels/slow")] = Reply(hang=True)
        with pytest.raises(AriError) as info:
            await client.rest.get_channel("slow")
        raised.append(info.value)
        fake_ari.ping_reply = Reply(500, {"message": "boom"})
        await eventually(lambda: len(fake_ari.connect_times) >= 3, timeout=3)

    # Nothing listening at all.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    async with AriClient(f"http://127.0.0.1:{free_port}/ari", USER, PASSWORD, APP) as gone:
        with pytest.raises(AriError) as info:
            await gone.rest.ping()
        raised.append(info.value)

    texts = [r.getMessage() for r in caplog.records]
    texts += [
        "".join(traceback.format_exception(*r.exc_info)) for r in caplog.records if r.exc_info
    ]
    texts += ["".join(traceback.format_exception(e)) for e in raised]
    texts += [repr(e.args) for e in raised]
    assert len(caplog.records) > 3
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_url_with_credentials_is_refused_without_echoing_it() -> None:
    with pytest.raises(AriError) as info:
        AriClient(f"http://{USER}:{PASSWORD}@127.0.0.1:8088/ari", USER, PASSWORD, APP)
    assert PASSWORD not in str(info.value)
    with pytest.raises(AriError, match="one Stasis application"):
        AriClient("http://127.0.0.1:8088/ari", USER, PASSWORD, "a,b")
    with pytest.raises(AriError, match="http"):
        AriClient("ftp://127.0.0.1/ari", USER, PASSWORD, APP)


async def test_rest_outside_async_with_is_a_clear_error() -> None:
    client = AriClient("http://127.0.0.1:8088/ari", USER, PASSWORD, APP)
    with pytest.raises(AriError, match="async with"):
        _ = client.rest
    with pytest.raises(AriError, match="async with"):
        await client.run(RecordingListener())


async def test_channel_gone_from_the_listener_is_not_logged_as_an_error(
    fake_ari: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    fake_ari.reply("POST", "/ari/channels/c1/answer", 404, {"message": "Channel not found"})
    fake_ari.reply("POST", "/ari/channels/c2/answer", 404, {"message": "Playback not found"})

    class Answering(RecordingListener):
        client: AriClient

        async def on_event(self, event: AriEvent) -> None:
            await super().on_event(event)
            assert event.channel_id is not None
            await self.client.rest.answer(event.channel_id)

    fake_ari.greeting = [dtmf("c1", "1", 0), dtmf("c2", "2", 1)]
    listener = Answering()
    caplog.set_level(logging.DEBUG, logger="pbx_service.ari")
    client = make_client(fake_ari)
    listener.client = client
    async with running(client, listener):
        await eventually(lambda: len(listener.events) == 2)
        await asyncio.sleep(0.05)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Only the unrelated 404 (c2) is an error; the hung-up caller (c1) is debug noise.
    assert len(errors) == 1
    exc_info = errors[0].exc_info
    assert exc_info is not None and "/channels/c2/answer" in str(exc_info[1])


async def test_cancelling_run_tears_down_and_reports_disconnect(fake_ari: FakeAri) -> None:
    listener = RecordingListener()
    async with make_client(fake_ari) as client:
        task = asyncio.create_task(client.run(listener))
        await client.wait_connected(2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not client.connected
    assert listener.disconnects == 1
    await eventually(lambda: all(ws.closed for ws in fake_ari.sockets))


async def test_close_does_not_wait_for_a_hanging_handshake() -> None:
    # A peer that accepts TCP and never answers the HTTP upgrade.
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = AriClient(f"http://127.0.0.1:{port}/ari", USER, PASSWORD, APP)
        async with client:
            task = asyncio.create_task(client.run(RecordingListener()))
            await eventually(lambda: len(held) == 1)
            started = asyncio.get_running_loop().time()
            await client.close()
            await asyncio.wait_for(task, 1)
            assert asyncio.get_running_loop().time() - started < 1
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_reconnects_after_the_tcp_connection_is_dropped(fake_ari: FakeAri) -> None:
    fake_ari.ws_modes = ["abort", "abort"]
    fake_ari.greeting = [dtmf("c1", "1", 0)]
    listener = RecordingListener()
    async with running(make_client(fake_ari), listener) as client:
        await eventually(lambda: len(fake_ari.connect_times) == 3)
        await client.wait_connected(2)
        await asyncio.sleep(0.5)  # the third connection is healthy and stays
        assert len(fake_ari.connect_times) == 3
    assert listener.connects == [False, True, True]
    assert listener.disconnects == 3
    # An abort may discard unsent greeting bytes; the healthy connection's arrive for sure.
    assert 1 <= len(listener.events) <= 3
    assert all(e.digit == "1" for e in listener.events)
