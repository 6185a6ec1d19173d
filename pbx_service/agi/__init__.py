"""FastAGI: our own server (``server.py``) over a pure wire-format module (``protocol.py``)."""

from pbx_service.agi.errors import (
    AgiArgumentError,
    AgiCommandError,
    AgiDeadChannel,
    AgiError,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiTimeout,
    AgiUsageError,
)
from pbx_service.agi.protocol import AgiRequest, AgiResult, format_command
from pbx_service.agi.server import AgiSession, FastAgiServer, Handler

__all__ = [
    "AgiArgumentError",
    "AgiCommandError",
    "AgiDeadChannel",
    "AgiError",
    "AgiHangup",
    "AgiInvalidCommand",
    "AgiProtocolError",
    "AgiRequest",
    "AgiResult",
    "AgiSession",
    "AgiTimeout",
    "AgiUsageError",
    "FastAgiServer",
    "Handler",
    "format_command",
]
