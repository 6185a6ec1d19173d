"""Errors raised by the AMI shim and the AMI frame parser.

The tree (every class carries a stable kebab-case ``error_id``)::

    PbxError                          pbx_service.errors
    └── AmiError                      ami-error: root of everything this package raises
        ├── AmiConnectionError        ami-connection: cannot connect, or the connection dropped
        │   └── AmiNotConnected       ami-not-connected: used before login / while reconnecting
        ├── AmiAuthError              ami-auth: Asterisk refused the username/secret
        ├── AmiTimeout                ami-timeout: no (complete) response in time
        ├── AmiActionError            ami-action: ``Response: Error``; ``response`` holds it
        ├── AmiArgumentError          ami-bad-argument: an action that cannot be sent safely
        └── AmiProtocolError          ami-protocol: bytes that are not AMI frames

Messages never contain the AMI secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from pbx_service.errors import PbxError


class AmiError(PbxError):
    """Root of every error raised by the AMI package."""

    error_id = "ami-error"


class AmiConnectionError(AmiError):
    """Asterisk's AMI port could not be reached, or the connection dropped mid-action.

    An action in flight when the connection drops fails with this error and is never re-sent:
    re-sending an ``Originate`` Asterisk may already have run would place a second call.
    """

    error_id = "ami-connection"


class AmiNotConnected(AmiConnectionError):
    """An action was sent before `AmiClient.connect` logged in, or while reconnecting."""

    error_id = "ami-not-connected"


class AmiAuthError(AmiError):
    """Asterisk rejected the login (wrong username/secret, or no permission in manager.conf)."""

    error_id = "ami-auth"


class AmiTimeout(AmiError):
    """Asterisk did not complete the response to an action in time."""

    error_id = "ami-timeout"


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``."""

    error_id = "ami-action"

    def __init__(self, action: str, response: Mapping[str, str | list[str]]) -> None:
        message = response.get("Message", "")
        super().__init__(f"AMI action {action!r} failed: {message}")
        self.action = action
        self.response = dict(response)


class AmiArgumentError(AmiError):
    """An action header that cannot be sent without changing its meaning (a line break, ...)."""

    error_id = "ami-bad-argument"


class AmiProtocolError(AmiError):
    """Bytes that do not parse as AMI frames."""

    error_id = "ami-protocol"
