"""The ARI error tree: status mapping and the channel-gone race."""

from __future__ import annotations

import re

import pytest

from pbx_service.ari import (
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
from pbx_service.ari.errors import http_error
from pbx_service.errors import PbxError


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, AriBadRequest),
        (401, AriAuthError),
        (403, AriAuthError),
        (404, AriNotFound),
        (409, AriConflict),
        (422, AriUnprocessable),
        (500, AriServerError),
        (501, AriServerError),
        (503, AriServerError),
        (405, AriHTTPError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[AriHTTPError]) -> None:
    err = http_error(status, "msg", "POST", "/channels/c1/answer")
    assert type(err) is cls
    assert isinstance(err, AriError) and isinstance(err, PbxError)
    assert (err.status, err.message, err.method, err.path) == (
        status,
        "msg",
        "POST",
        "/channels/c1/answer",
    )
    assert str(err) == f"POST /channels/c1/answer -> {status} msg"


@pytest.mark.parametrize(
    ("status", "message", "gone"),
    [
        (404, "Channel not found", True),
        (400, "Channel not found", True),  # addChannel with a destroyed channel
        (409, "Channel not in Stasis application", True),
        (422, "Channel not in Stasis application", True),
        (404, "Provided variable was not found", False),
        (404, "Playback not found", False),
        (409, "Channel with given unique ID already exists", False),
        (422, "Channel not in this bridge", False),
        (500, "Channel not found", False),
        (409, "Bridge isn't playing music", False),
    ],
)
def test_means_channel_gone(status: int, message: str, gone: bool) -> None:
    assert http_error(status, message, "POST", "/x").means_channel_gone is gone


def test_tree_shape_and_error_ids() -> None:
    assert issubclass(AriFrameError, AriProtocolError)
    for cls in (AriConnectionError, AriProtocolError, AriUsageError, AriHTTPError):
        assert issubclass(cls, AriError)
    ids = {
        c.error_id
        for c in (
            AriError,
            AriUsageError,
            AriConnectionError,
            AriProtocolError,
            AriFrameError,
            AriHTTPError,
            AriBadRequest,
            AriAuthError,
            AriNotFound,
            AriConflict,
            AriUnprocessable,
            AriServerError,
        )
    }
    assert len(ids) == 12
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", i) for i in ids)
