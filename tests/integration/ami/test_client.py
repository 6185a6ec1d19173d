"""AmiClient (panoramisk + our fixes) against a fake AMI server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pbx_service.ami.client import AmiClient, AmiMessage
from pbx_service.ami.errors import (
    AmiActionError,
    AmiArgumentError,
    AmiAuthError,
    AmiConnectionError,
    AmiNotConnected,
    AmiTimeout,
)
from pbx_service.ami.protocol import format_action
from pbx_service.ami.testing import FakeAmiServer, frame
from pbx_service.errors import PbxError

pytestmark = pytest.mark.timeout(20)

ClientFactory = Callable[..., AmiClient]


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmiServer]:
    server = FakeAmiServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def make_client(ami: FakeAmiServer) -> AsyncIterator[ClientFactory]:
    clients: list[AmiClient] = []

    def make(**kwargs: Any) -> AmiClient:
        options: dict[str, Any] = {"reconnect_delay": 0.1, "action_timeout": 3.0}
        options.update(kwargs)
        secret = options.pop("secret", ami.secret)
        client = AmiClient("127.0.0.1", ami.port, ami.username, secret, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 -- polls state owned by the code under test
            await asyncio.sleep(0.01)


async def test_connect_returns_only_after_login(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    ami.login_delay = 0.3
    client = make_client()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.connect()
    assert loop.time() - started >= 0.3
    assert client.connected
    assert client.version == "11.0.0"
    pong = await client.send_action({"Action": "Ping"})
    assert isinstance(pong, dict)
    assert pong["Ping"] == "Pong"
    assert "content" not in pong
    login = ami.actions[0]
    assert (login["Action"], login["Username"], login["Events"]) == ("Login", "pbx", "on")


async def test_send_action_before_connect_raises_our_error(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(AmiNotConnected) as info:
        await client.send_action({"Action": "Ping"})
    assert isinstance(info.value, PbxError)
    assert info.value.error_id == "ami-not-connected"
    assert "connect()" in str(info.value)


async def test_bad_secret_raises_auth_error_and_stops(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    client = make_client(secret="wrong")
    with pytest.raises(AmiAuthError, match="Authentication failed") as info:
        await client.connect()
    assert "wrong" not in str(info.value)
    await asyncio.sleep(0.3)  # three reconnect delays: no retry loop with a bad secret
    assert ami.logins == 1
    assert not client.connected


async def test_unreachable_port_gives_up_after_the_timeout(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    await ami.stop_listening()
    client = make_client()
    with pytest.raises(AmiConnectionError, match="no AMI login"):
        await client.connect(timeout=0.5)
    assert not client.connected


async def test_utf8_split_across_two_tcp_reads_arrives_intact(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    events: list[AmiMessage] = []
    client = make_client()
    client.on("Newchannel", events.append)
    await client.connect()
    raw = format_action(
        {"Event": "Newchannel", "Channel": "PJSIP/trunk-1", "CallerIDName": "Zoë Ёлкина"}
    )
    split = raw.index("ë".encode()) + 1  # between the two bytes of "ë"
    await ami.push(raw, split_at=split)
    await until(lambda: len(events) == 1)
    assert events[0]["CallerIDName"] == "Zoë Ёлкина"

    ami.handlers["Getvar"] = lambda f: [frame(Response="Success", Variable="N", Value="Zoë")]
    reply = await client.send_action({"Action": "Getvar", "Variable": "N"})
    assert isinstance(reply, dict)
    assert reply["Value"] == "Zoë"


async def test_originate_without_async_keeps_the_connection(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.connect()
    # Exactly what broke panoramisk (#90): no Async header from the caller.
    reply = await client.send_action(
        {"Action": "Originate", "Channel": "Local/800@from-trunk", "Application": "Wait"}
    )
    assert isinstance(reply, dict)
    assert reply["Message"] == "Originate successfully queued"
    assert ami.actions[-1]["Async"] == "false"  # explicit, Asterisk's own default
    assert await client.send_action({"Action": "Ping"})
    assert ami.logins == 1 and client.connected

    result = await client.originate(
        "Local/800@from-trunk",
        application="Stasis",
        data="caller-sim,role=ami",
        caller_id="AMI Test <+79160000800>",
        variables={"AMI_VAR": "1", "B": "2"},
    )
    sent = ami.actions[-1]
    assert sent["Async"] == "true"
    assert sent["Variable"] == ["AMI_VAR=1", "B=2"]
    assert (result.success, result.reason, result.uniqueid) == (True, 4, "1795611468.168")
    assert result.channel == "Local/800@from-trunk-00000056;1"
    assert ami.logins == 1 and client.connected


async def test_originate_with_async_spelled_yes_is_normalised(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.connect()
    reply = await client.send_action(
        {"Action": "Originate", "Channel": "Local/1@x", "Application": "Wait", "async": "Yes"}
    )
    assert isinstance(reply, list)  # waited for the OriginateResponse
    assert reply[1]["Event"] == "OriginateResponse"
    assert ami.actions[-1]["Async"] == "true"
    assert "async" not in ami.actions[-1]


async def test_events_reach_sync_and_async_handlers(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    seen: list[tuple[str, str]] = []
    async_done = asyncio.Event()

    def on_state(event: AmiMessage) -> None:
        seen.append(("sync", str(event["Device"])))

    async def on_state_async(event: AmiMessage) -> None:
        await asyncio.sleep(0)
        seen.append(("async", str(event["Device"])))
        async_done.set()

    def on_any(event: AmiMessage) -> None:
        seen.append(("any", str(event["Event"])))

    def broken(event: AmiMessage) -> None:
        raise RuntimeError("handler bug")

    client = make_client()
    client.on("devicestatechange", on_state)  # any case
    client.on("DeviceStateChange", broken)
    client.on("DeviceStateChange", on_state_async)
    client.on("*", on_any)
    await client.connect()
    await ami.push_event(Event="DeviceStateChange", Device="PJSIP/101", State="INUSE")
    await asyncio.wait_for(async_done.wait(), 5)
    assert ("sync", "PJSIP/101") in seen
    assert ("async", "PJSIP/101") in seen
    assert ("any", "DeviceStateChange") in seen
    assert ("any", "FullyBooted") in seen
    assert await client.send_action({"Action": "Ping"})  # the broken handler broke nothing


async def test_reconnect_after_the_server_drops_the_connection(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    events: list[AmiMessage] = []
    client = make_client()
    client.on("UserEvent", events.append)
    await client.connect()
    await ami.drop()
    await until(lambda: not client.connected)
    with pytest.raises(AmiNotConnected):
        await client.send_action({"Action": "Ping"})
    await until(lambda: client.connected)
    assert ami.logins == 2
    assert await client.send_action({"Action": "Ping"})
    await ami.push_event(Event="UserEvent", UserEvent="after-reconnect")
    await until(lambda: len(events) == 1)


async def test_action_in_flight_fails_on_drop_and_is_not_resent(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    ami.handlers["Originate"] = lambda f: [frame(_drop=True)]
    client = make_client()
    await client.connect()
    with pytest.raises(AmiConnectionError, match="dropped"):
        await client.originate("Local/800@from-trunk", context="from-trunk", exten="800")
    await until(lambda: client.connected)
    await client.send_action({"Action": "Ping"})
    names = [a["Action"] for a in ami.actions]
    assert names.count("Originate") == 1  # no second call placed after the reconnect


async def test_list_responses_and_helpers(ami: FakeAmiServer, make_client: ClientFactory) -> None:
    ami.handlers["DeviceStateList"] = lambda f: [
        frame(Response="Success", EventList="start", Message="Device State Changes will follow"),
        frame(Event="DeviceStateChange", Device="PJSIP/101", State="NOT_INUSE"),
        frame(Event="DeviceStateChange", Device="Custom:agent101", State="INUSE"),
        frame(Event="DeviceStateListComplete", EventList="Complete", ListItems="2"),
    ]
    ami.handlers["Command"] = lambda f: [
        frame(
            Response="Success",
            Message="Command output follows",
            Output=["Channel   Location   State", "0 active channels"],
        )
    ]
    client = make_client()
    await client.connect()
    assert await client.device_state_list() == {
        "PJSIP/101": "NOT_INUSE",
        "Custom:agent101": "INUSE",
    }
    reply = await client.send_action({"Action": "Command", "Command": "core show channels"})
    assert isinstance(reply, dict)
    assert reply["Output"] == ["Channel   Location   State", "0 active channels"]


async def test_error_response_and_bad_headers(
    ami: FakeAmiServer, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.connect()
    with pytest.raises(AmiActionError, match="Invalid/unknown command") as info:
        await client.send_action({"Action": "NoSuchAction"})
    assert info.value.response["Response"] == "Error"
    count = len(ami.actions)
    with pytest.raises(AmiArgumentError):
        await client.originate(
            "Local/1@x", application="Wait", caller_id="x\r\nAction: Hangup\r\nChannel: all"
        )
    with pytest.raises(AmiArgumentError):
        await client.send_action({"Channel": "no action header"})
    assert len(ami.actions) == count  # nothing reached the server
    assert client.connected


async def test_action_timeout(ami: FakeAmiServer, make_client: ClientFactory) -> None:
    ami.handlers["Slow"] = lambda f: [frame(_delay=1.0, Response="Success")]
    client = make_client()
    await client.connect()
    with pytest.raises(AmiTimeout, match="'Slow'"):
        await client.send_action({"Action": "Slow"}, timeout=0.2)


async def test_close_stops_reconnecting(ami: FakeAmiServer, make_client: ClientFactory) -> None:
    client = make_client()
    await client.connect()
    await client.close()
    await asyncio.sleep(0.3)
    assert ami.logins == 1
    assert ami.clients == 0
    with pytest.raises(AmiNotConnected):
        await client.send_action({"Action": "Ping"})


async def test_unanswered_ping_forces_a_reconnect(
    ami: FakeAmiServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(ping_interval=0.1, ping_timeout=0.2)
    await client.connect()
    ami.handlers["Ping"] = lambda f: []  # a frozen Asterisk: TCP open, no answers
    await until(lambda: ami.logins == 2)
    assert "did not answer a Ping within 0.2 s" in caplog.text
    ami.handlers["Ping"] = lambda f: [frame(Response="Success", Ping="Pong")]
    await until(lambda: client.connected)
    assert await client.send_action({"Action": "Ping"})


async def test_reconnect_after_the_server_was_down_for_a_while(
    ami: FakeAmiServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    await client.connect()
    port = ami.port
    await ami.stop_listening()
    await ami.drop()
    await asyncio.sleep(0.5)  # several failed re-dials at 0.1 s
    assert not client.connected
    assert caplog.text.count("unreachable") == 1  # said once, not at every re-dial
    await ami.start(port)
    await until(lambda: client.connected)
    assert ami.logins == 2
    assert await client.send_action({"Action": "Ping"})
