"""Our FastAGI server on ``asyncio.start_server``.

panoramisk's FastAGI server freezes the whole event loop on a truncated request block followed
by EOF, raises ``ValueError`` for commands after the peer closed and cannot run plain-function
routes on 3.11 (see /work/shared/decisions.md). This one reads through the pure `AgiDecoder`
under a deadline and size limits, turns EOF and ``HANGUP`` into `AgiHangup`, and runs every
connection in its own task that `FastAgiServer.close` cancels.

Usage::

    async def route(session: AgiSession) -> None:
        await session.answer()
        await session.set_variable("ROUTE_RESULT", "ok")

    server = FastAgiServer({"route": route}, port=4573)
    await server.start()      # dialplan: AGI(agi://127.0.0.1:4573/route,arg1,arg2)
    ...
    await server.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

from pbx_service.agi.errors import (
    AgiCommandError,
    AgiDeadChannel,
    AgiError,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiTimeout,
    AgiUsageError,
)
from pbx_service.agi.protocol import (
    AgiDecoder,
    AgiHangupNotice,
    AgiMessage,
    AgiRequest,
    AgiResult,
    check_command_line,
    format_command,
)

log = logging.getLogger(__name__)

Handler = Callable[["AgiSession"], Awaitable[None]]

_READ_SIZE: Final = 65536


class _Default:
    """Marker for "use the server's command timeout"."""


_DEFAULT: Final = _Default()


class AgiSession:
    """One FastAGI connection: the request Asterisk sent and the commands we run on it.

    Commands are sequential by protocol; concurrent calls are serialised. After a hangup (the
    ``HANGUP`` line or EOF) every command raises `AgiHangup` without being sent.
    """

    def __init__(
        self,
        request: AgiRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: AgiDecoder,
        pending: Sequence[AgiMessage],
        command_timeout: float,
    ) -> None:
        self.request = request
        self._reader = reader
        self._writer = writer
        self._decoder = decoder
        self._pending: deque[AgiMessage] = deque(pending)
        self._command_timeout = command_timeout
        self._lock = asyncio.Lock()
        self._hangup_reason: str | None = None

    @property
    def hung_up(self) -> bool:
        """True once the channel hung up or the connection ended; no command can run."""
        return self._hangup_reason is not None

    async def command(
        self, text: str, *args: str | int, timeout: float | _Default | None = _DEFAULT
    ) -> AgiResult:
        """Run one command and return its 200 reply.

        Without ``args`` ``text`` is sent as is (one line); with ``args`` ``text`` is the verb
        and every argument is quoted. ``timeout`` defaults to the server's command timeout;
        ``None`` waits as long as the command runs (EXEC Dial, long prompts).

        Raises `AgiHangup` (EOF, ``HANGUP``), `AgiDeadChannel` (511), `AgiInvalidCommand` (510),
        `AgiUsageError` (520), `AgiCommandError` (other codes), `AgiTimeout`.
        """
        line = format_command(text, *args) if args else check_command_line(text)
        name = line.decode("utf-8", errors="replace").rstrip("\n")
        limit = self._command_timeout if isinstance(timeout, _Default) else timeout
        async with self._lock:
            self._raise_if_hung_up()
            try:
                async with asyncio.timeout(limit):
                    self._writer.write(line)
                    await self._writer.drain()
                    result = await self._read_reply()
            except TimeoutError:
                self._abort(f"no reply to {name!r} within {limit} s")
                raise AgiTimeout(f"no reply to AGI command {name!r} within {limit} s") from None
            except (ConnectionError, OSError) as exc:
                self._abort(f"connection lost: {exc}")
                raise AgiHangup(f"connection lost while sending {name!r}: {exc}") from exc
            except AgiProtocolError:
                self._abort("protocol error")
                raise
        if result.code == 200:
            return result
        if result.code == 511:
            self._hangup_reason = "511 dead channel"
            raise AgiDeadChannel(f"{name!r}: {result.data}")
        if result.code == 510:
            raise AgiInvalidCommand(name, result)
        if result.code == 520:
            raise AgiUsageError(name, result)
        raise AgiCommandError(name, result)

    def _raise_if_hung_up(self) -> None:
        if self._hangup_reason is not None:
            raise AgiHangup(f"AGI session is over ({self._hangup_reason})")
        if self._pending and isinstance(self._pending[0], AgiHangupNotice):
            self._pending.popleft()
            self._hangup_reason = "HANGUP from Asterisk"
            raise AgiHangup("the channel hung up (HANGUP from Asterisk)")

    async def _read_reply(self) -> AgiResult:
        while True:
            while self._pending:
                message = self._pending.popleft()
                if isinstance(message, AgiHangupNotice):
                    self._hangup_reason = "HANGUP from Asterisk"
                    raise AgiHangup("the channel hung up (HANGUP from Asterisk)")
                if isinstance(message, AgiResult):
                    if message.code == 100:  # "100 result=0 Trying...": progress, keep waiting
                        continue
                    return message
                raise AgiProtocolError("a second FastAGI request block on one connection")
            data = await self._reader.read(_READ_SIZE)
            if not data:
                self._hangup_reason = "connection closed by Asterisk"
                self._decoder.feed_eof()
                raise AgiHangup("Asterisk closed the AGI connection")
            self._pending.extend(self._decoder.feed(data))

    def _abort(self, reason: str) -> None:
        # The stream may hold a late reply now; nothing after it could be matched safely.
        self._hangup_reason = reason
        self._writer.close()

    # -- helpers -------------------------------------------------------------------------

    async def answer(self) -> None:
        """Answer the channel."""
        await self._checked("ANSWER")

    async def hangup(self, channel: str | None = None) -> None:
        """Hang up this channel (or ``channel``)."""
        if channel is None:
            await self._checked("HANGUP")
        else:
            await self._checked("HANGUP", channel)

    async def get_variable(self, name: str) -> str | None:
        """A channel variable or dialplan function value; None when it is not set."""
        result = await self.command("GET VARIABLE", name)
        return result.data if result.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        """Evaluate an expression such as ``${CALLERID(num)}`` on the channel."""
        result = await self.command("GET FULL VARIABLE", expression)
        return result.data if result.result == "1" else None

    async def set_variable(self, name: str, value: str | int) -> None:
        """Set a channel variable or dialplan function, e.g. ``CALLERID(num)``."""
        await self._checked("SET VARIABLE", name, value)

    async def exec(
        self, app: str, args: str | Sequence[str] = "", *, timeout: float | None = None
    ) -> AgiResult:
        """Run a dialplan application; a sequence of ``args`` is joined with commas.

        The result is the application's return value (``-2``: no such application). Waits as
        long as the application runs unless ``timeout`` is given.
        """
        joined = args if isinstance(args, str) else ",".join(args)
        result = await self.command("EXEC", app, joined, timeout=timeout)
        if result.result == "-2":
            raise AgiCommandError(f"EXEC {app}", result)
        return result

    async def stream_file(
        self, name: str, escape_digits: str = "", *, timeout: float | None = None
    ) -> str | None:
        """Play a sound file; return the DTMF digit that interrupted it, or None."""
        result = await self._checked("STREAM FILE", name, escape_digits, timeout=timeout)
        code = int(result.result) if result.result.isdigit() else 0
        return chr(code) if code > 0 else None

    async def verbose(self, message: str, level: int = 1) -> None:
        """Write a message to Asterisk's console/log at ``level`` (1-4)."""
        await self.command("VERBOSE", message, level)

    async def _checked(
        self, verb: str, *args: str | int, timeout: float | _Default | None = _DEFAULT
    ) -> AgiResult:
        result = await self.command(verb, *args, timeout=timeout)
        if result.result == "-1":
            raise AgiCommandError(verb, result)
        return result


class FastAgiServer:
    """Serve FastAGI connections, running ``routes[script]`` for each.

    ``routes`` maps the path of ``agi://host:port/<path>`` to an ``async def handler(session)``.
    A client gets ``request_timeout`` seconds to send its request block of at most
    ``max_request_bytes``; a command waits ``command_timeout`` for its reply by default.
    """

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        request_timeout: float = 5.0,
        command_timeout: float = 10.0,
        max_request_bytes: int = 16384,
    ) -> None:
        for path, handler in routes.items():
            call = getattr(handler, "__call__", None)  # noqa: B004 -- async callable objects too
            if not (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)):
                raise AgiError(
                    f"FastAGI route {path!r}: the handler must be an 'async def' taking the "
                    f"session, got {handler!r}"
                )
        self._routes = {path.strip("/"): handler for path, handler in routes.items()}
        self._host = host
        self._port = port
        self._request_timeout = request_timeout
        self._command_timeout = command_timeout
        self._max_request_bytes = max_request_bytes
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise AgiError("FastAgiServer.start() called twice")
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        log.info("FastAGI server listening on %s:%d", self._host, self.port)

    async def close(self) -> None:
        """Stop accepting, cancel every running session and wait for them to finish."""
        if self._server is None:
            return
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own named task rather than start_server's: on 3.11 its done-callback calls
        # task.exception() and logs an error for every session close() cancels.
        peer = writer.get_extra_info("peername")
        task = asyncio.create_task(self._serve(reader, writer, peer), name=f"fastagi {peer}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        try:
            session = await self._open_session(reader, writer, peer)
            if session is not None:
                await self._run(session, peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _open_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> AgiSession | None:
        decoder = AgiDecoder(max_request_bytes=self._max_request_bytes)
        messages: list[AgiMessage] = []
        try:
            # One deadline for the whole block, so a client trickling bytes is dropped too.
            async with asyncio.timeout(self._request_timeout):
                while not decoder.request_done:
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        decoder.feed_eof()
                        log.debug("FastAGI client %s closed before sending a request", peer)
                        return None
                    messages.extend(decoder.feed(data))
        except TimeoutError:
            log.warning(
                "FastAGI client %s sent no complete request block within %s s; dropped",
                peer,
                self._request_timeout,
            )
            return None
        except AgiProtocolError as exc:
            log.warning("FastAGI client %s dropped: %s", peer, exc)
            return None
        except (ConnectionError, OSError) as exc:
            log.debug("FastAGI client %s went away: %s", peer, exc)
            return None
        request = messages[0]
        assert isinstance(request, AgiRequest)
        return AgiSession(request, reader, writer, decoder, messages[1:], self._command_timeout)

    async def _run(self, session: AgiSession, peer: object) -> None:
        request = session.request
        handler = self._routes.get(request.script)
        if handler is None:
            log.warning(
                "FastAGI route %r is not served (channel %s, from %s); known routes: %s",
                request.script,
                request.channel,
                peer,
                ", ".join(sorted(self._routes)) or "none",
            )
            # Tell the Asterisk console why, then end the session so the dialplan continues.
            with contextlib.suppress(AgiError):
                await session.verbose(f"pbx-service: no FastAGI route {request.script!r}", 1)
            return
        try:
            await handler(session)
        except AgiHangup as exc:
            log.debug("FastAGI %s on %s ended by hangup: %s", request.script, request.channel, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "FastAGI handler %r failed on channel %s; closing the session",
                request.script,
                request.channel,
            )
