"""A fake Asterisk manager interface on 127.0.0.1 speaking the real wire protocol.

Frames follow traces/08_ami_and_fastagi.jsonl (Asterisk 22): banner, Login answered with
``Authentication accepted`` then ``FullyBooted``, ``Ping``/``Pong``, ``Originate`` with
``Async: true`` answered ``Originate successfully queued`` then an ``OriginateResponse`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pbx_service.ami.protocol import AmiFrame, AmiFrameDecoder, format_action

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Reply = list[dict[str, Any]]
ActionHandler = Callable[[AmiFrame], Reply]


def frame(**headers: Any) -> dict[str, Any]:
    return dict(headers)


class FakeAmi:
    def __init__(self, username: str = "pbx", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.actions: list[AmiFrame] = []
        self.logins = 0
        self.login_delay = 0.0
        self.handlers: dict[str, ActionHandler] = {
            "Ping": lambda f: [frame(Response="Success", Ping="Pong", Timestamp="1.0")],
            "Originate": self._originate,
        }
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """Refuse new connections (existing ones stay)."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drop(self) -> None:
        """Close every client connection, as a restarting Asterisk does."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @property
    def clients(self) -> int:
        return len(self._writers)

    async def push(self, data: bytes, *, split_at: int | None = None) -> None:
        """Send raw bytes to every logged-in client, optionally as two separate TCP writes."""
        parts = [data] if split_at is None else [data[:split_at], data[split_at:]]
        for index, part in enumerate(parts):
            for writer in self._writers:
                writer.write(part)
                await writer.drain()
            if index < len(parts) - 1:
                await asyncio.sleep(0.05)  # let the client read the first part on its own

    async def push_event(self, **headers: Any) -> None:
        await self.push(format_action(headers))

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        decoder = AmiFrameDecoder()
        try:
            while data := await reader.read(65536):
                for action in decoder.feed(data):
                    self.actions.append(action)
                    if not await self._answer(action, writer):
                        return
        except ConnectionError:
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    async def _answer(self, action: AmiFrame, writer: asyncio.StreamWriter) -> bool:
        name = str(action.get("Action", ""))
        action_id = str(action.get("ActionID", ""))
        if name == "Login":
            self.logins += 1
            await asyncio.sleep(self.login_delay)
            if action.get("Username") != self.username or action.get("Secret") != self.secret:
                writer.write(
                    format_action(
                        {
                            "Response": "Error",
                            "ActionID": action_id,
                            "Message": "Authentication failed",
                        }
                    )
                )
                return False
            writer.write(
                format_action(
                    {
                        "Response": "Success",
                        "ActionID": action_id,
                        "Message": "Authentication accepted",
                    }
                )
            )
            writer.write(
                format_action(
                    {
                        "Event": "FullyBooted",
                        "Privilege": "system,all",
                        "Uptime": "756",
                        "LastReload": "154",
                        "Status": "Fully Booted",
                    }
                )
            )
            self._writers.append(writer)
            return True
        handler = self.handlers.get(name)
        if handler is None:
            replies: Reply = [
                frame(
                    Response="Error",
                    Message=f"Invalid/unknown command: {name}. "
                    "Use Action: ListCommands to show available commands.",
                )
            ]
        else:
            replies = handler(action)
        for reply in replies:
            if reply.get("_delay"):
                await asyncio.sleep(reply.pop("_delay"))
            if reply.get("_drop"):
                writer.close()
                return False
            writer.write(format_action({**reply, "ActionID": action_id}))
        await writer.drain()
        return True

    @staticmethod
    def _originate(action: AmiFrame) -> Reply:
        queued = frame(Response="Success", Message="Originate successfully queued")
        if str(action.get("Async", "")).lower() != "true":
            return [queued]
        return [
            queued,
            frame(
                _delay=0.05,
                Event="OriginateResponse",
                Privilege="call,all",
                Response="Success",
                Channel=f"{action.get('Channel')}-00000056;1",
                Application=str(action.get("Application", "")),
                Data=str(action.get("Data", "")),
                Reason="4",
                Uniqueid="1795611468.168",
                CallerIDNum="+79160000800",
                CallerIDName="AMI Test",
            ),
        ]
