"""Errors raised by the FastAGI server and its protocol parser.

The tree (every class carries a stable kebab-case ``error_id``)::

    PbxError                          pbx_service.errors
    └── AgiError                      agi-error: root of everything this package raises
        ├── AgiProtocolError          agi-protocol: the peer sent something that is not FastAGI
        ├── AgiArgumentError          agi-bad-argument: a command that cannot be sent safely
        ├── AgiTimeout                agi-timeout: no reply within the command timeout
        ├── AgiHangup                 agi-hangup: the channel hung up or the peer closed the socket
        │   └── AgiDeadChannel        agi-dead-channel: 511, command refused on a dead channel
        └── AgiCommandError           agi-command-failed: Asterisk ran the command, it failed
            ├── AgiInvalidCommand     agi-invalid-command: 510, unknown command
            └── AgiUsageError         agi-usage: 520, bad syntax; ``usage`` holds Asterisk's text

A handler normally catches only ``AgiHangup``: the caller went away, which is not an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbx_service.errors import PbxError

if TYPE_CHECKING:
    from pbx_service.agi.protocol import AgiResult


class AgiError(PbxError):
    """Root of every error raised by the FastAGI package."""

    error_id = "agi-error"


class AgiProtocolError(AgiError):
    """Bytes from the peer that are not FastAGI (bad request block, oversized, garbled reply)."""

    error_id = "agi-protocol"


class AgiArgumentError(AgiError):
    """A command or argument that cannot be sent without changing its meaning.

    Raised for line breaks and NUL bytes (they would end the command line and let a value, e.g. a
    caller ID, inject a second command) and for lines longer than Asterisk's 2047-byte buffer
    (Asterisk would cut the line and run the rest as another command).
    """

    error_id = "agi-bad-argument"


class AgiTimeout(AgiError):
    """Asterisk did not answer a command in time; the session is closed afterwards."""

    error_id = "agi-timeout"


class AgiHangup(AgiError):
    """The channel hung up (``HANGUP`` line) or the peer closed the connection."""

    error_id = "agi-hangup"


class AgiDeadChannel(AgiHangup):
    """511: Asterisk refused the command because the channel is already dead."""

    error_id = "agi-dead-channel"


class AgiCommandError(AgiError):
    """Asterisk answered the command with a failure; ``result`` is the parsed reply."""

    error_id = "agi-command-failed"

    def __init__(self, command: str, result: AgiResult) -> None:
        super().__init__(f"{command!r} failed: {result.code} {result.describe()}")
        self.command = command
        self.result = result


class AgiInvalidCommand(AgiCommandError):
    """510: Asterisk does not know the command."""

    error_id = "agi-invalid-command"


class AgiUsageError(AgiCommandError):
    """520: the command's syntax is wrong; ``usage`` is Asterisk's explanation."""

    error_id = "agi-usage"

    @property
    def usage(self) -> str:
        """Asterisk's "proper usage" text."""
        return self.result.data
