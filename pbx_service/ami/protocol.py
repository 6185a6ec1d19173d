"""AMI wire format: pure parsing and formatting, no I/O.

Asterisk's manager interface, as recorded from Asterisk 22 (traces/08_ami_and_fastagi.jsonl):
after the banner line ``Asterisk Call Manager/11.0.0\\r\\n`` both sides exchange frames of
``Key: Value\\r\\n`` lines ended by an empty line. Responses carry ``Response:``, events
``Event:``. A key may repeat: ``Command`` output comes as one ``Output:`` line per CLI line, and
``Originate`` takes one ``Variable:`` per variable.

Before Asterisk 14, ``Command`` answered with a legacy block instead::

    Response: Follows\\r\\n
    Privilege: Command\\r\\n
    ActionID: 7\\r\\n
    raw CLI output, any lines, even empty ones\\n
    --END COMMAND--\\r\\n
    \\r\\n

Both forms parse to the same shape: ``Output`` is always a list of lines.

A frame is a ``dict[str, str | list[str]]``; a key that repeats becomes a list of its values in
order, and ``Output``/``ChanVariable`` are lists even when they appear once.

The live connection is parsed by panoramisk (see `pbx_service.ami.client`); this module serves
tests, fake servers and the simulator, and is the reference for what a frame looks like.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from typing import Final

from pbx_service.ami.errors import AmiArgumentError, AmiProtocolError

AmiFrame = dict[str, str | list[str]]

BANNER_PREFIX: Final = "Asterisk Call Manager/"
EOL: Final = "\r\n"
LIST_KEYS: Final = frozenset({"Output", "ChanVariable"})
_END_COMMAND: Final = "--END COMMAND--"
_FOLLOWS_HEADERS: Final = frozenset({"Privilege", "ActionID"})
_KEY_RE = re.compile(r"^[A-Za-z0-9_()\-]+$")
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20


def parse_banner(line: str) -> str | None:
    """The AMI version from ``Asterisk Call Manager/11.0.0``, or None for any other line."""
    line = line.rstrip("\r\n")
    if line.startswith(BANNER_PREFIX):
        return line[len(BANNER_PREFIX) :].strip()
    return None


def _add(frame: AmiFrame, key: str, value: str) -> None:
    old = frame.get(key)
    if old is None:
        frame[key] = [value] if key in LIST_KEYS else value
    elif isinstance(old, list):
        old.append(value)
    else:
        frame[key] = [old, value]


class _FrameAssembler:
    """Line-level state machine shared by `parse_frames` and `AmiFrameDecoder`."""

    def __init__(self) -> None:
        self.version: str | None = None
        self._first_line = True
        self._frame: AmiFrame = {}
        # Inside a legacy "Response: Follows" block: "headers", then "body", then "done".
        self._follows: str | None = None

    @property
    def in_frame(self) -> bool:
        return bool(self._frame)

    def line(self, line: str) -> AmiFrame | None:
        if self._first_line:
            self._first_line = False
            version = parse_banner(line)
            if version is not None:
                self.version = version
                return None
        if self._follows is not None:
            return self._follows_line(line)
        if not line:
            return self._finish()
        key, sep, value = line.partition(":")
        if not sep or not _KEY_RE.match(key):
            raise AmiProtocolError(f"AMI line is not 'Key: Value': {line[:80]!r}")
        value = value[1:] if value.startswith(" ") else value
        if not self._frame and key == "Response" and value == "Follows":
            self._follows = "headers"
        _add(self._frame, key, value)
        return None

    def _follows_line(self, line: str) -> AmiFrame | None:
        if self._follows == "done":
            if line:
                raise AmiProtocolError(f"text after {_END_COMMAND}: {line[:80]!r}")
            self._follows = None
            return self._finish()
        if self._follows == "headers":
            key, sep, value = line.partition(": ")
            if sep and key in _FOLLOWS_HEADERS:
                _add(self._frame, key, value)
                return None
            self._follows = "body"
            self._frame.setdefault("Output", [])
        if line.endswith(_END_COMMAND):
            # Some versions glue the marker to the last output line.
            rest = line[: -len(_END_COMMAND)]
            if rest:
                _add(self._frame, "Output", rest)
            self._follows = "done"
            return None
        _add(self._frame, "Output", line)
        return None

    def _finish(self) -> AmiFrame | None:
        frame, self._frame = self._frame, {}
        return frame or None  # several empty lines in a row are not frames

    def end(self) -> AmiFrame | None:
        """The text ended: return the frame it cut off, if any."""
        if self._follows in ("headers", "body"):
            raise AmiProtocolError(f"legacy 'Response: Follows' block without {_END_COMMAND}")
        self._follows = None
        return self._finish()


def _split_lines(text: str) -> list[str]:
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def parse_frames(data: str | bytes) -> list[AmiFrame]:
    """Parse a complete stretch of AMI text into frames, in order.

    A leading banner line is skipped; a last frame without its empty line still counts.
    Raises `AmiProtocolError` for a line that is not ``Key: Value``.
    """
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    assembler = _FrameAssembler()
    frames: list[AmiFrame] = []
    lines = _split_lines(text)
    if lines and lines[-1] == "":
        lines.pop()  # the text ended with a line break, not with an extra empty line
    for line in lines:
        frame = assembler.line(line)
        if frame is not None:
            frames.append(frame)
    last = assembler.end()
    if last is not None:
        frames.append(last)
    return frames


class AmiFrameDecoder:
    """Incremental AMI decoder: `feed` any chunk of bytes, get the frames it completes.

    UTF-8 is decoded incrementally, so a character split across two reads arrives intact (the
    bug this project works around in panoramisk). ``version`` is set from the banner.
    """

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._assembler = _FrameAssembler()
        self._max = max_frame_bytes

    @property
    def version(self) -> str | None:
        """The AMI version from the banner, once seen."""
        return self._assembler.version

    def feed(self, data: bytes) -> list[AmiFrame]:
        """Add received bytes; return the frames they complete."""
        self._pending += self._decoder.decode(data)
        *lines, self._pending = self._pending.split("\n")
        if len(self._pending) > self._max:
            raise AmiProtocolError(f"AMI line longer than {self._max} characters")
        frames: list[AmiFrame] = []
        for line in lines:
            frame = self._assembler.line(line[:-1] if line.endswith("\r") else line)
            if frame is not None:
                frames.append(frame)
        return frames


def format_action(action: Mapping[str, str | int | Sequence[str]]) -> bytes:
    """Encode one action (or any frame) for the wire; a sequence value repeats its key.

    Raises `AmiArgumentError` for a key that is not a header name and for a value with a line
    break, which would end the header early and let the value inject headers or a second action.
    """
    lines: list[str] = []
    for key, value in action.items():
        if not _KEY_RE.match(key):
            raise AmiArgumentError(f"AMI header name {key[:40]!r} is not letters/digits/_-()")
        values = [value] if isinstance(value, str | int) else list(value)
        for item in values:
            text = str(item)
            if "\r" in text or "\n" in text:
                raise AmiArgumentError(
                    f"AMI header {key!r} value {text[:40]!r} contains a line break; it would "
                    "inject headers or another action, remove it first"
                )
            lines.append(f"{key}: {text}")
    try:
        return (EOL.join(lines) + EOL + EOL).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from surrogateescape decoding
        raise AmiArgumentError(f"AMI action is not valid Unicode ({exc.reason})") from exc
