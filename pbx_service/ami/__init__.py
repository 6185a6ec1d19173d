"""AMI: a small shim over panoramisk (``client.py``) and a pure frame parser (``protocol.py``)."""

from pbx_service.ami.client import AmiClient, AmiMessage, OriginateResult
from pbx_service.ami.errors import (
    AmiActionError,
    AmiArgumentError,
    AmiAuthError,
    AmiConnectionError,
    AmiError,
    AmiNotConnected,
    AmiProtocolError,
    AmiTimeout,
)
from pbx_service.ami.protocol import AmiFrame, AmiFrameDecoder, format_action, parse_frames

__all__ = [
    "AmiActionError",
    "AmiArgumentError",
    "AmiAuthError",
    "AmiClient",
    "AmiConnectionError",
    "AmiError",
    "AmiFrame",
    "AmiFrameDecoder",
    "AmiMessage",
    "AmiNotConnected",
    "AmiProtocolError",
    "AmiTimeout",
    "OriginateResult",
    "format_action",
    "parse_frames",
]
