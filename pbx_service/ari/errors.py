"""Errors raised by the ARI client.

The tree (every class carries a stable kebab-case ``error_id``)::

    PbxError                          pbx_service.errors
    └── AriError                      ari-error: root of everything this package raises
        ├── AriUsageError             ari-usage: bad URL, app name or argument given to the client
        ├── AriConnectionError        ari-connection: transport failure or timeout (no HTTP status)
        ├── AriProtocolError          ari-protocol: a 2xx body or a frame we cannot understand
        │   └── AriFrameError         ari-bad-frame: a WebSocket frame that is not an ARI event
        └── AriHTTPError              ari-http: Asterisk answered with a non-2xx status
            ├── AriBadRequest         400
            ├── AriAuthError          401, 403
            ├── AriNotFound           404
            ├── AriConflict           409
            ├── AriUnprocessable      422
            └── AriServerError        5xx

``AriHTTPError`` carries ``status``, ``message`` (ARI's ``{"message": ...}`` body, or
``{"error": ...}`` as in 500 "Allocation failed"), ``method`` and ``path`` (never the query
string nor credentials). ``means_channel_gone`` is True for the normal race where the caller hung
up while a command was in flight (404 "Channel not found", 409/422 "Channel not in Stasis
application", and 400 "Channel not found", which ``addChannel`` answers for a channel that no
longer exists): the call flow treats those as a hangup and nothing logs them as errors.
"""

from __future__ import annotations

from pbx_service.errors import PbxError

# Messages Asterisk sends when the channel a command addressed has left us.
_CHANNEL_NOT_FOUND = "channel not found"
_CHANNEL_GONE_409_422 = "channel not in stasis application"


class AriError(PbxError):
    """Root of every error raised by the ARI client."""

    error_id = "ari-error"


class AriUsageError(AriError):
    """The client was given an unusable URL, app name or argument, or used out of order."""

    error_id = "ari-usage"


class AriConnectionError(AriError):
    """Asterisk could not be reached or did not answer in time."""

    error_id = "ari-connection"


class AriProtocolError(AriError):
    """Asterisk sent something that does not look like ARI (e.g. a 200 without JSON)."""

    error_id = "ari-protocol"


class AriFrameError(AriProtocolError):
    """A WebSocket frame that is not an ARI event (not JSON, no ``type``, binary)."""

    error_id = "ari-bad-frame"

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class AriHTTPError(AriError):
    """Asterisk answered a REST request with a non-2xx status."""

    error_id = "ari-http"

    def __init__(self, status: int, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path} -> {status} {message}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    @property
    def means_channel_gone(self) -> bool:
        """True when the addressed channel has hung up or left Stasis (a normal race)."""
        msg = self.message.strip().lower()
        if self.status in (400, 404):
            # 400 comes from addChannel when a listed channel has already been destroyed.
            return msg == _CHANNEL_NOT_FOUND
        if self.status in (409, 422):
            return msg == _CHANNEL_GONE_409_422
        return False


class AriBadRequest(AriHTTPError):
    """400: a parameter was missing or invalid."""

    error_id = "ari-bad-request"


class AriAuthError(AriHTTPError):
    """401/403: wrong ARI username or password, or not allowed."""

    error_id = "ari-auth"


class AriNotFound(AriHTTPError):
    """404: the channel, bridge, playback, recording or variable does not exist."""

    error_id = "ari-not-found"


class AriConflict(AriHTTPError):
    """409: the object is in a state that does not allow the command."""

    error_id = "ari-conflict"


class AriUnprocessable(AriHTTPError):
    """422: the request was understood but refers to something unusable."""

    error_id = "ari-unprocessable"


class AriServerError(AriHTTPError):
    """5xx: Asterisk failed to carry out the request."""

    error_id = "ari-server-error"


_BY_STATUS: dict[int, type[AriHTTPError]] = {
    400: AriBadRequest,
    401: AriAuthError,
    403: AriAuthError,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def http_error(status: int, message: str, method: str, path: str) -> AriHTTPError:
    """Build the most specific `AriHTTPError` subclass for an HTTP status."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = AriServerError if status >= 500 else AriHTTPError
    return cls(status, message, method, path)
