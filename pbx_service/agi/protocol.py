"""FastAGI wire format: pure parsing and formatting, no I/O.

A FastAGI session, as Asterisk 22 speaks it (see traces/08_ami_and_fastagi.jsonl):

1. Asterisk connects and sends the request block, ``agi_name: value`` lines ended by an empty
   line: ``agi_network: yes``, ``agi_request: agi://127.0.0.1:4573/route?x=y``,
   ``agi_channel: ...``, ``agi_callerid: ...``, ``agi_arg_1: ...``, ...
2. We send one command per line (``SET VARIABLE "CALLERID(num)" "+7495..."``) and read one reply:
   ``200 result=1 (text) endpos=3404``, ``510 Invalid or unknown command``,
   ``511 Command Not Permitted on a dead channel or intercept routine``, or the multi-line
   ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper usage.``
3. When the channel hangs up Asterisk sends a bare ``HANGUP`` line (AGISIGHUP, on by default).

`AgiDecoder` is the state machine the server feeds with whatever ``read()`` returned; it splits
on ``\\n`` at the byte level, so a chunk may end anywhere, even inside a UTF-8 sequence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from pbx_service.agi.errors import AgiArgumentError, AgiProtocolError

# res_agi.c reads a command into a 2048-byte buffer; a longer line is cut and its remainder is
# run as the next command, so a line (with its "\n") must fit in 2047 bytes.
MAX_COMMAND_BYTES: Final = 2047
DEFAULT_MAX_REQUEST_BYTES: Final = 16384
DEFAULT_MAX_REPLY_BYTES: Final = 1 << 20

_ENV_KEY_RE = re.compile(r"^agi_[a-z0-9_]+$")
_ARG_KEY_RE = re.compile(r"^agi_arg_([1-9][0-9]*)$")
_VERB_RE = re.compile(r"^[A-Za-z]+( [A-Za-z]+)*$")
# "200 result=1 (some data) endpos=3404": the data in parentheses is optional and may itself
# contain parentheses (a variable's value), so it runs to the last ")" before the key=value tail.
_RESULT_RE = re.compile(
    r"^result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?P<extra>(?: [A-Za-z_][A-Za-z0-9_]*=\S*)*) *$"
)
_CODE_RE = re.compile(r"^(?P<code>[0-9]{3})(?P<sep>[ -])(?P<rest>.*)$")
_FORBIDDEN_CHARS = ("\n", "\r", "\x00")


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """The request block Asterisk sends when a FastAGI connection opens.

    ``env`` holds every ``agi_*`` line as sent (keys keep their ``agi_`` prefix); ``script`` is
    the route path from ``agi_request`` without the leading slash (``route`` for
    ``agi://host:4573/route?x=y``); ``query`` its parameters (last one wins); ``args`` the
    ``agi_arg_1..N`` values in order.
    """

    env: Mapping[str, str]
    script: str
    query: Mapping[str, str]
    args: tuple[str, ...]

    def get(self, name: str, default: str | None = None) -> str | None:
        """One request variable, by its name with or without the ``agi_`` prefix."""
        key = name if name.startswith("agi_") else f"agi_{name}"
        return self.env.get(key, default)

    @property
    def channel(self) -> str:
        """The channel name (``agi_channel``), empty when Asterisk did not send it."""
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        """The channel's unique id, the same as ARI's channel id."""
        return self.env.get("agi_uniqueid", "")

    @property
    def callerid(self) -> str:
        """Caller number; Asterisk sends ``unknown`` when there is none."""
        return self.env.get("agi_callerid", "")

    @property
    def calleridname(self) -> str:
        """Caller name; Asterisk sends ``unknown`` when there is none."""
        return self.env.get("agi_calleridname", "")

    @property
    def context(self) -> str:
        """Dialplan context that ran ``AGI()``."""
        return self.env.get("agi_context", "")

    @property
    def extension(self) -> str:
        """Dialplan extension that ran ``AGI()``."""
        return self.env.get("agi_extension", "")


@dataclass(frozen=True, slots=True)
class AgiResult:
    """One parsed command reply.

    ``code`` is the status (200, 510, 511, 520, ...); for 200 ``result`` is the ``result=``
    value and ``data`` the text in parentheses; ``extra`` holds trailing ``key=value`` pairs
    such as ``endpos``. For other codes ``data`` is Asterisk's message (for 520 the whole usage
    text, one line per line).
    """

    code: int
    result: str = ""
    data: str = ""
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        """True for a 200 reply whose result is not -1 (Asterisk's failure value)."""
        return self.code == 200 and self.result != "-1"

    def describe(self) -> str:
        """A one-line human description for logs and error messages."""
        if self.code == 200:
            text = f"result={self.result}"
            if self.data:
                text += f" ({self.data})"
            for key, value in self.extra.items():
                text += f" {key}={value}"
            return text
        return self.data.splitlines()[0] if self.data else ""


@dataclass(frozen=True, slots=True)
class AgiHangupNotice:
    """The bare ``HANGUP`` line Asterisk sends when the channel hangs up."""


AgiMessage = AgiRequest | AgiResult | AgiHangupNotice


def _decode_line(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", errors="replace")


def parse_request(block: bytes | str) -> AgiRequest:
    """Parse a complete request block (with or without its final empty line).

    Raises `AgiProtocolError` naming the offending line when the block is not FastAGI, e.g. an
    HTTP request sent to the AGI port.
    """
    text = block.decode("utf-8", errors="replace") if isinstance(block, bytes) else block
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return _request_from_lines(lines)


def _request_from_lines(lines: list[str]) -> AgiRequest:
    if not lines:
        raise AgiProtocolError("empty FastAGI request block: expected 'agi_name: value' lines")
    env: dict[str, str] = {}
    args: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        key, sep, value = line.partition(":")
        if not sep or not _ENV_KEY_RE.match(key):
            raise AgiProtocolError(
                f"line {number} of the FastAGI request block is not 'agi_name: value': "
                f"{line[:80]!r} (is something other than Asterisk's AGI() connecting?)"
            )
        value = value[1:] if value.startswith(" ") else value
        env[key] = value
        arg = _ARG_KEY_RE.match(key)
        if arg:
            args[int(arg.group(1))] = value
    if "agi_request" not in env and "agi_network_script" not in env:
        raise AgiProtocolError(
            "FastAGI request block has neither agi_request nor agi_network_script; "
            "cannot tell which route to run"
        )
    script, query = _route_of(env)
    ordered = tuple(args[n] for n in sorted(args))
    return AgiRequest(
        env=MappingProxyType(env),
        script=script,
        query=MappingProxyType(query),
        args=ordered,
    )


def _route_of(env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    request = env.get("agi_request", "")
    if "://" in request:
        parts = urlsplit(request)
        path, query = parts.path, parts.query
    else:
        # agi_network_script is what follows host:port/, query string included.
        path, _, query = env.get("agi_network_script", request).partition("?")
    return path.strip("/"), dict(parse_qsl(query, keep_blank_values=True))


def parse_reply(lines: list[str]) -> AgiResult:
    """Parse one reply: a single line, or a ``NNN-`` ... ``NNN `` multi-line block."""
    if not lines:
        raise AgiProtocolError("empty AGI reply")
    first = _CODE_RE.match(lines[0])
    if not first:
        raise AgiProtocolError(f"AGI reply does not start with a status code: {lines[0][:80]!r}")
    code = int(first.group("code"))
    if first.group("sep") == "-":
        last = _CODE_RE.match(lines[-1])
        if len(lines) < 2 or not last or last.group("code") != first.group("code"):
            raise AgiProtocolError(f"unterminated multi-line AGI reply {code}")
        body = [first.group("rest"), *lines[1:-1], last.group("rest")]
        return AgiResult(code=code, data="\n".join(body))
    if len(lines) != 1:
        raise AgiProtocolError(f"single-line AGI reply {code} followed by extra lines")
    rest = first.group("rest")
    if code in (100, 200):
        match = _RESULT_RE.match(rest)
        if match:
            extra: dict[str, str] = {}
            for pair in match.group("extra").split():
                key, _, value = pair.partition("=")
                extra[key] = value
            return AgiResult(
                code=code,
                result=match.group("result"),
                data=match.group("data") or "",
                extra=MappingProxyType(extra),
            )
    return AgiResult(code=code, data=rest)


def quote(value: str | int) -> str:
    """Quote one command argument the way res_agi's ``parse_args`` unquotes it.

    Backslashes and double quotes are escaped; line breaks and NUL cannot be sent at all (they
    would end the command line) and raise `AgiArgumentError`.
    """
    text = str(value)
    for char in _FORBIDDEN_CHARS:
        if char in text:
            raise AgiArgumentError(
                f"AGI argument {text[:40]!r} contains {char!r}; line breaks and NUL would end "
                "the command and start another one, remove them first"
            )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_command_line(text: str) -> bytes:
    """Validate a raw command line and encode it with its final ``\\n``."""
    for char in _FORBIDDEN_CHARS:
        if char in text:
            raise AgiArgumentError(
                f"AGI command {text[:40]!r} contains {char!r}; send one command per call"
            )
    try:
        data = text.encode("utf-8") + b"\n"
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from surrogateescape decoding
        raise AgiArgumentError(
            f"AGI command {text[:40]!r} is not valid Unicode ({exc.reason}); it cannot be sent"
        ) from exc
    if len(data) > MAX_COMMAND_BYTES:
        raise AgiArgumentError(
            f"AGI command is {len(data)} bytes; Asterisk cuts lines longer than "
            f"{MAX_COMMAND_BYTES} bytes and would run the rest as another command"
        )
    return data


def format_command(verb: str, *args: str | int) -> bytes:
    """Build one command line: ``format_command("SET VARIABLE", "X", v)`` ->
    ``b'SET VARIABLE "X" "v"\\n'``. Every argument is quoted, so no value can split the line.
    """
    if not _VERB_RE.match(verb):
        raise AgiArgumentError(
            f"AGI command verb {verb[:40]!r} must be words of letters, e.g. 'SET VARIABLE'; "
            "pass values as separate arguments so they are quoted"
        )
    return check_command_line(" ".join([verb, *(quote(arg) for arg in args)]))


class AgiDecoder:
    """Incremental FastAGI decoder for the server side.

    `feed` takes any chunk of bytes and returns the messages completed by it: first one
    `AgiRequest`, then `AgiResult` replies and `AgiHangupNotice`. `feed_eof` reports a request
    block or reply cut short by the end of the stream. Limits guard memory: a request block over
    ``max_request_bytes`` or a reply over ``max_reply_bytes`` raises `AgiProtocolError`.
    """

    def __init__(
        self,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self._buffer = bytearray()
        self._max_request_bytes = max_request_bytes
        self._max_reply_bytes = max_reply_bytes
        self._request_lines: list[str] | None = []
        self._request_size = 0
        self._reply_lines: list[str] = []
        self._reply_size = 0
        self._reply_code = ""

    @property
    def request_done(self) -> bool:
        """True once the request block has been decoded."""
        return self._request_lines is None

    def feed(self, data: bytes) -> list[AgiMessage]:
        """Add received bytes; return every message they complete, in order."""
        self._buffer += data
        out: list[AgiMessage] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            message = self._line(raw)
            if message is not None:
                out.append(message)
        self._check_pending()
        return out

    def feed_eof(self) -> None:
        """The peer closed the stream; raise if it cut a request block or a reply short."""
        if self._request_lines is not None and (self._request_lines or self._buffer):
            raise AgiProtocolError(
                f"connection closed inside the FastAGI request block after "
                f"{self._request_size + len(self._buffer)} bytes (no terminating empty line)"
            )
        if self._reply_lines:
            raise AgiProtocolError(
                f"connection closed inside the multi-line AGI reply {self._reply_code}"
            )

    def _check_pending(self) -> None:
        if self._request_lines is not None:
            if self._request_size + len(self._buffer) > self._max_request_bytes:
                raise AgiProtocolError(
                    f"FastAGI request block exceeds {self._max_request_bytes} bytes without "
                    "its terminating empty line"
                )
        elif self._reply_size + len(self._buffer) > self._max_reply_bytes:
            raise AgiProtocolError(f"AGI reply exceeds {self._max_reply_bytes} bytes")

    def _line(self, raw: bytes) -> AgiMessage | None:
        if self._request_lines is not None:
            self._request_size += len(raw) + 1
            line = _decode_line(raw)
            if line:
                self._request_lines.append(line)
                return None
            if not self._request_lines:
                # Blank lines before the block carry nothing; tolerate them.
                return None
            lines, self._request_lines = self._request_lines, None
            return _request_from_lines(lines)

        line = _decode_line(raw)
        if self._reply_lines:
            self._reply_lines.append(line)
            self._reply_size += len(raw) + 1
            if line.startswith(self._reply_code + " "):
                lines, self._reply_lines, self._reply_size = self._reply_lines, [], 0
                return parse_reply(lines)
            return None
        if line == "HANGUP":
            return AgiHangupNotice()
        if not line:
            return None
        match = _CODE_RE.match(line)
        if match and match.group("sep") == "-":
            self._reply_code = match.group("code")
            self._reply_lines = [line]
            self._reply_size = len(raw) + 1
            return None
        return parse_reply([line])
