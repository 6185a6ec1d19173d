"""`FakeAmiServer`: an in-process AMI server speaking Asterisk's real wire protocol.

For tests and demos of anything that uses `AmiClient`. Frames follow
traces/08_ami_and_fastagi.jsonl (Asterisk 22): the banner ``Asterisk Call Manager/11.0.0``,
``Login`` answered ``Authentication accepted`` then a ``FullyBooted`` event, ``Ping`` ->
``Pong``, ``Originate`` answered ``Originate successfully queued`` and, with ``Async: true``, an
``OriginateResponse`` event (``Reason: 4``, answered) carrying the action's ``ActionID``;
unknown actions get ``Response: Error`` ``Invalid/unknown command``.

Control: ``handlers[action] = fn(frame) -> [reply dicts]`` (a reply may hold ``_delay`` seconds
to wait first, or ``_drop=True`` to close the connection instead), `push`/`push_event` to send
events (optionally split into two TCP writes), `drop` to cut every connection, and
`stop_listening`/`start` to be down for a while. ``actions`` records every frame received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

from pbx_service.ami.protocol import AmiFrame, AmiFrameDecoder, format_action

BANNER: Final = b"Asterisk Call Manager/11.0.0\r\n"

Reply = list[dict[str, Any]]
ActionHandler = Callable[[AmiFrame], Reply]


def frame(**headers: Any) -> dict[str, Any]:
    """A reply/event frame for a handler: ``frame(Response="Success", Ping="Pong")``."""
    return dict(headers)


def _pong(_action: AmiFrame) -> Reply:
    return [frame(Response="Success", Ping="Pong", Timestamp="1795611468.572009")]


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


class FakeAmiServer:
    """An AMI server on 127.0.0.1 accepting one ``username``/``secret`` pair."""

    def __init__(self, username: str = "pbx", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.actions: list[AmiFrame] = []
        self.logins = 0
        self.login_delay = 0.0
        self.handlers: dict[str, ActionHandler] = {"Ping": _pong, "Originate": _originate}
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def clients(self) -> int:
        """Connections currently logged in."""
        return len(self._writers)

    async def start(self, port: int = 0) -> None:
        """Listen (again) on ``port``; 0 picks a free one, then see ``.port``."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop_listening(self) -> None:
        """Refuse new connections; existing ones stay up."""
        if self._server is not None:
            # close() stops listening at once; wait_closed() would also wait for the open
            # connections to end (Python >= 3.12), which this method keeps up on purpose.
            self._server.close()
            self._server = None
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drop(self) -> None:
        """Close every client connection, as a restarting Asterisk does."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

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
        """Send one event frame to every logged-in client."""
        await self.push(format_action(headers))

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer), name="fake ami connection")
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
            return await self._login(action, action_id, writer)
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
            reply = dict(reply)
            delay = reply.pop("_delay", 0)
            if delay:
                await asyncio.sleep(delay)
            if reply.pop("_drop", False):
                writer.close()
                return False
            writer.write(format_action({**reply, "ActionID": action_id}))
        await writer.drain()
        return True

    async def _login(self, action: AmiFrame, action_id: str, writer: asyncio.StreamWriter) -> bool:
        self.logins += 1
        await asyncio.sleep(self.login_delay)
        if action.get("Username") != self.username or action.get("Secret") != self.secret:
            writer.write(
                format_action(
                    {"Response": "Error", "ActionID": action_id, "Message": "Authentication failed"}
                )
            )
            return False  # Asterisk ends the session after a failed login
        writer.write(
            format_action(
                {"Response": "Success", "ActionID": action_id, "Message": "Authentication accepted"}
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
