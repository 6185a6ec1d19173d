"""`FakeAsterisk`: plays Asterisk's side of one FastAGI connection, on raw bytes.

For tests and demos of FastAGI routes without a PBX::

    asterisk = await FakeAsterisk.connect(server.port, request_block("route", callerid="+7495..."))
    assert await asterisk.answer(b"200 result=0\\n") == b"ANSWER\\n"
    await asterisk.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Self


def request_block(
    route: str,
    *,
    args: Sequence[str] = (),
    host: str = "127.0.0.1:4573",
    **env: str,
) -> bytes:
    """A request block as Asterisk 22 sends it for ``AGI(agi://host/route,args...)``.

    ``env`` adds or overrides ``agi_*`` variables by their short name (``callerid="+7495..."``).
    """
    values = {
        "network": "yes",
        "network_script": route,
        "request": f"agi://{host}/{route}",
        "channel": "PJSIP/trunk-00000001",
        "language": "en",
        "type": "PJSIP",
        "uniqueid": "1795611470.171",
        "version": "22.10.1",
        "callerid": "+79160000123",
        "calleridname": "AGI Test",
        "context": "agi-test",
        "extension": "123",
        "priority": "3",
    }
    values.update(env)
    values.update({f"arg_{n}": value for n, value in enumerate(args, start=1)})
    return "".join(f"agi_{key}: {value}\n" for key, value in values.items()).encode() + b"\n"


class FakeAsterisk:
    """The Asterisk end of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, block: bytes, host: str = "127.0.0.1") -> Self:
        """Open a connection and send ``block`` (any bytes, so broken blocks can be tested)."""
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(block)
        await writer.drain()
        return cls(reader, writer)

    async def expect(self, timeout: float = 5.0) -> bytes:
        """The next command line the server sent (b'' once it closed the connection)."""
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def send(self, data: bytes) -> None:
        """Write raw bytes: a reply, ``HANGUP\\n``, garbage."""
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, reply: bytes) -> bytes:
        """Read one command, send ``reply`` to it, return the command."""
        command = await self.expect()
        await self.send(reply)
        return command

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Wait until the server closes; True if nothing more was sent before that."""
        try:
            return await asyncio.wait_for(self.reader.read(), timeout) == b""
        except ConnectionResetError:
            # Closed while our last write was in flight: the kernel answers it with a reset.
            return True

    async def close(self) -> None:
        """Close our end, as Asterisk does when the channel goes away."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
