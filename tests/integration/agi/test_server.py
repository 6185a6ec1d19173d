"""FastAgiServer over a real socket on 127.0.0.1, with the test playing Asterisk on raw bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Self

import pytest

from pbx_service.agi import testing
from pbx_service.agi.errors import (
    AgiArgumentError,
    AgiCommandError,
    AgiDeadChannel,
    AgiError,
    AgiHangup,
    AgiInvalidCommand,
    AgiTimeout,
    AgiUsageError,
)
from pbx_service.agi.server import AgiSession, FastAgiServer, Handler

pytestmark = pytest.mark.timeout(15)

REQUEST = (
    b"agi_network: yes\n"
    b"agi_network_script: route?team=sales\n"
    b"agi_request: agi://127.0.0.1:4573/route?team=sales\n"
    b"agi_channel: PJSIP/trunk-00000007\n"
    b"agi_uniqueid: 1795611470.171\n"
    b"agi_callerid: +74951234567\n"
    b"agi_calleridname: Zo\xc3\xab\n"
    b"agi_arg_1: 123\n"
    b"agi_arg_2: extra-arg\n"
    b"\n"
)


class FakeAsterisk(testing.FakeAsterisk):
    """Remembers every connection so the autouse fixture closes them all."""

    opened: ClassVar[list[FakeAsterisk]] = []

    @classmethod
    async def connect(cls, port: int, block: bytes = REQUEST, host: str = "127.0.0.1") -> Self:
        client = await super().connect(port, block, host)
        cls.opened.append(client)
        return client


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while FakeAsterisk.opened:
        await FakeAsterisk.opened.pop().close()


ServerFactory = Callable[..., Awaitable[FastAgiServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    servers: list[FastAgiServer] = []

    async def make(routes: dict[str, Handler], **kwargs: Any) -> FastAgiServer:
        server = FastAgiServer(routes, port=0, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


async def test_a_session_runs_commands_with_quoted_arguments(make_server: ServerFactory) -> None:
    seen: dict[str, Any] = {}
    done = asyncio.Event()

    async def route(session: AgiSession) -> None:
        seen["request"] = session.request
        await session.answer()
        seen["did"] = await session.get_variable("DID")
        seen["missing"] = await session.get_variable("NO_SUCH_VAR")
        await session.set_variable("CALLERID(name)", 'Zoë "the boss"')
        seen["exec"] = await session.exec("Dial", ["PJSIP/101", "20"])
        seen["digit"] = await session.stream_file("welcome", "12")
        await session.verbose("done")
        await session.hangup()
        done.set()

    server = await make_server({"route": route})
    asterisk = await FakeAsterisk.connect(server.port)
    assert await asterisk.answer(b"200 result=0\n") == b"ANSWER\n"
    assert await asterisk.answer(b"200 result=1 (800)\n") == b'GET VARIABLE "DID"\n'
    assert await asterisk.answer(b"200 result=0\n") == b'GET VARIABLE "NO_SUCH_VAR"\n'
    assert (
        await asterisk.answer(b"200 result=1\n")
        == 'SET VARIABLE "CALLERID(name)" "Zoë \\"the boss\\""\n'.encode()
    )
    assert await asterisk.answer(b"200 result=0\n") == b'EXEC "Dial" "PJSIP/101,20"\n'
    assert await asterisk.answer(b"200 result=49 endpos=8000\n") == b'STREAM FILE "welcome" "12"\n'
    assert await asterisk.answer(b"200 result=1\n") == b'VERBOSE "done" "1"\n'
    assert await asterisk.answer(b"200 result=1\n") == b"HANGUP\n"
    await asyncio.wait_for(done.wait(), 5)
    assert await asterisk.closed_by_server()
    assert seen["request"].script == "route"
    assert seen["request"].calleridname == "Zoë"
    assert seen["request"].args == ("123", "extra-arg")
    assert dict(seen["request"].query) == {"team": "sales"}
    assert (seen["did"], seen["missing"], seen["digit"]) == ("800", None, "1")
    assert seen["exec"].result == "0"


async def test_truncated_request_then_eof_does_not_block_other_clients(
    make_server: ServerFactory,
) -> None:
    served = asyncio.Event()

    async def route(session: AgiSession) -> None:
        await session.verbose("hi")
        served.set()

    server = await make_server({"route": route}, request_timeout=5.0)
    bad = await FakeAsterisk.connect(server.port, REQUEST[:70])  # no blank line
    bad.writer.write_eof()
    hanging = await FakeAsterisk.connect(server.port, REQUEST[:40])  # stays open, silent
    good = await FakeAsterisk.connect(server.port)
    assert await good.answer(b"200 result=1\n") == b'VERBOSE "hi" "1"\n'
    await asyncio.wait_for(served.wait(), 2)
    assert await bad.closed_by_server()  # dropped at once, well before request_timeout
    assert not hanging.reader.at_eof()
    await hanging.close()


async def test_silent_and_trickling_clients_are_dropped_at_the_deadline(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def route(session: AgiSession) -> None:
        raise AssertionError("must not run")

    server = await make_server({"route": route}, request_timeout=0.3)
    silent = await FakeAsterisk.connect(server.port, b"")
    trickle = await FakeAsterisk.connect(server.port, b"agi_network: yes\n")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(5):  # a byte every 0.1 s keeps reads alive but not the deadline
        await asyncio.sleep(0.1)
        if trickle.reader.at_eof():
            break
        trickle.writer.write(b"a")
    assert await silent.closed_by_server()
    assert await trickle.closed_by_server()
    assert loop.time() - started < 2
    assert "no complete request block within 0.3 s" in caplog.text


async def test_oversized_request_block_is_rejected(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def route(session: AgiSession) -> None:
        raise AssertionError("must not run")

    server = await make_server({"route": route}, max_request_bytes=1024)
    client = await FakeAsterisk.connect(server.port, b"agi_x: " + b"y" * 4000 + b"\n")
    assert await client.closed_by_server()
    assert "exceeds 1024 bytes" in caplog.text


async def test_not_fastagi_is_rejected(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server({})
    client = await FakeAsterisk.connect(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await client.closed_by_server()
    assert "not 'agi_name: value'" in caplog.text


async def test_commands_after_the_peer_closed_raise_hangup(make_server: ServerFactory) -> None:
    outcome: list[BaseException] = []
    closed = asyncio.Event()
    finished = asyncio.Event()

    async def route(session: AgiSession) -> None:
        await closed.wait()
        for _ in range(2):  # first discovers EOF, second must not try the socket again
            try:
                await session.answer()
            except Exception as exc:
                outcome.append(exc)
        finished.set()

    server = await make_server({"route": route})
    client = await FakeAsterisk.connect(server.port)
    await client.close()
    closed.set()
    await asyncio.wait_for(finished.wait(), 5)
    assert [type(e) for e in outcome] == [AgiHangup, AgiHangup]


async def test_hangup_line_raises_and_nothing_more_is_sent(make_server: ServerFactory) -> None:
    outcome: list[BaseException] = []
    finished = asyncio.Event()

    async def route(session: AgiSession) -> None:
        try:
            await session.stream_file("long-prompt")
        except AgiCommandError as exc:  # result=-1: interrupted by the hangup
            outcome.append(exc)
        for _ in range(2):
            try:
                await session.set_variable("X", "1")
            except AgiHangup as exc:
                outcome.append(exc)
        assert session.hung_up
        finished.set()

    server = await make_server({"route": route})
    client = await FakeAsterisk.connect(server.port)
    await client.expect()
    await client.send(b"200 result=-1 endpos=1234\n")
    command = await client.expect()
    assert command == b'SET VARIABLE "X" "1"\n'
    await client.send(b"HANGUP\n")  # Asterisk's notice arrives before the reply
    await asyncio.wait_for(finished.wait(), 5)
    assert [type(e) for e in outcome] == [AgiCommandError, AgiHangup, AgiHangup]
    await client.send(b"200 result=1\n")
    assert await client.closed_by_server()  # no third command was written


async def test_error_replies_become_typed_errors(make_server: ServerFactory) -> None:
    outcome: list[BaseException] = []
    finished = asyncio.Event()

    async def route(session: AgiSession) -> None:
        for text in ("NO SUCH COMMAND", "STREAM FILE", "ANSWER"):
            try:
                await session.command(text)
            except Exception as exc:
                outcome.append(exc)
        finished.set()

    server = await make_server({"route": route})
    client = await FakeAsterisk.connect(server.port)
    await client.answer(b"510 Invalid or unknown command\n")
    await client.answer(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: STREAM FILE <filename> <escape digits>\n"
        b"520 End of proper usage.\n"
    )
    await client.answer(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    await asyncio.wait_for(finished.wait(), 5)
    invalid, usage, dead = outcome
    assert isinstance(invalid, AgiInvalidCommand) and invalid.result.code == 510
    assert isinstance(usage, AgiUsageError)
    assert "Usage: STREAM FILE" in usage.usage
    assert isinstance(dead, AgiDeadChannel) and isinstance(dead, AgiHangup)


async def test_an_injecting_value_is_refused_before_anything_is_sent(
    make_server: ServerFactory,
) -> None:
    outcome: list[BaseException] = []

    async def route(session: AgiSession) -> None:
        try:
            await session.set_variable("CALLERID(name)", "x\nEXEC System reboot")
        except AgiArgumentError as exc:
            outcome.append(exc)
        await session.verbose("after")

    server = await make_server({"route": route})
    client = await FakeAsterisk.connect(server.port)
    assert await client.answer(b"200 result=1\n") == b'VERBOSE "after" "1"\n'
    assert await client.closed_by_server()
    assert len(outcome) == 1


async def test_command_timeout_closes_the_session(make_server: ServerFactory) -> None:
    outcome: list[BaseException] = []

    async def route(session: AgiSession) -> None:
        try:
            await session.answer()
        except AgiTimeout as exc:
            outcome.append(exc)

    server = await make_server({"route": route}, command_timeout=0.2)
    client = await FakeAsterisk.connect(server.port)
    assert await client.expect() == b"ANSWER\n"
    assert await client.closed_by_server()
    assert len(outcome) == 1


async def test_handler_exception_is_logged_and_the_server_keeps_serving(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def route(session: AgiSession) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug in the route")
        await session.verbose("second")

    server = await make_server({"route": route})
    first = await FakeAsterisk.connect(server.port)
    assert await first.closed_by_server()
    assert "FastAGI handler 'route' failed" in caplog.text
    assert "bug in the route" in caplog.text
    second = await FakeAsterisk.connect(server.port)
    assert await second.answer(b"200 result=1\n") == b'VERBOSE "second" "1"\n'


async def test_unknown_route_says_why_and_ends_the_session(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def route(session: AgiSession) -> None:
        raise AssertionError("must not run")

    server = await make_server({"other": route})
    client = await FakeAsterisk.connect(server.port)
    assert (
        await client.answer(b"200 result=1\n")
        == b'VERBOSE "pbx-service: no FastAGI route \'route\'" "1"\n'
    )
    assert await client.closed_by_server()
    assert "route 'route' is not served" in caplog.text


async def test_close_cancels_running_sessions(make_server: ServerFactory) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def route(session: AgiSession) -> None:
        started.set()
        try:
            await session.exec("Dial", "PJSIP/101")  # no timeout: waits for Asterisk
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = FastAgiServer({"route": route}, port=0)
    await server.start()
    client = await FakeAsterisk.connect(server.port)
    await asyncio.wait_for(started.wait(), 5)
    assert await client.expect() == b'EXEC "Dial" "PJSIP/101"\n'
    await asyncio.wait_for(server.close(), 5)
    assert cancelled.is_set()
    assert await client.closed_by_server()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_many_concurrent_sessions(make_server: ServerFactory) -> None:
    async def route(session: AgiSession) -> None:
        value = await session.get_variable("N")
        await session.set_variable("ECHO", value or "")

    server = await make_server({"route": route})

    async def call(n: int) -> bytes:
        client = await FakeAsterisk.connect(server.port)
        await client.answer(f"200 result=1 ({n})\n".encode())
        command = await client.answer(b"200 result=1\n")
        await client.close()
        return command

    commands = await asyncio.gather(*(call(n) for n in range(50)))
    assert commands == [f'SET VARIABLE "ECHO" "{n}"\n'.encode() for n in range(50)]


def test_a_plain_function_route_is_refused_at_construction() -> None:
    def plain(session: AgiSession) -> None:
        pass

    class Route:
        async def __call__(self, session: AgiSession) -> None:
            pass

    with pytest.raises(AgiError, match="must be an 'async def'"):
        FastAgiServer({"route": plain})  # type: ignore[dict-item]
    FastAgiServer({"route": Route()})  # async callable objects are fine
