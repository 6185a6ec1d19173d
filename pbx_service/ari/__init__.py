"""Our thin ARI (Asterisk REST Interface) client: REST commands, the supervised events socket,
typed event values and per-call event routing. Knows nothing of IVRs or queues."""

from .client import AriClient
from .dispatch import EventDispatcher
from .errors import (
    AriAuthError,
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriFrameError,
    AriHTTPError,
    AriNotFound,
    AriProtocolError,
    AriServerError,
    AriUnprocessable,
    AriUsageError,
)
from .events import AriListener, parse_event
from .models import (
    AriEvent,
    Bridge,
    CallerId,
    Channel,
    DeviceState,
    DialplanLocation,
    Endpoint,
    LiveRecording,
    Playback,
    parse_timestamp,
)
from .rest import AriRest

__all__ = [
    "AriAuthError",
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriConnectionError",
    "AriError",
    "AriEvent",
    "AriFrameError",
    "AriHTTPError",
    "AriListener",
    "AriNotFound",
    "AriProtocolError",
    "AriRest",
    "AriServerError",
    "AriUnprocessable",
    "AriUsageError",
    "Bridge",
    "CallerId",
    "Channel",
    "DeviceState",
    "DialplanLocation",
    "Endpoint",
    "EventDispatcher",
    "LiveRecording",
    "Playback",
    "parse_event",
    "parse_timestamp",
]
