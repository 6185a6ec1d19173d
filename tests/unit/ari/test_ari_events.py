"""Parsing ARI event frames (raw bytes shaped like Asterisk 22's) into `AriEvent`."""

from __future__ import annotations

import logging

import pytest

from pbx_service.ari import AriEvent, AriFrameError, parse_event, parse_timestamp
from pbx_service.ari.events import BadFrameLog

_CHANNEL = (
    b'{"id": "1795611322.117", "name": "Local/100@from-trunk-0000003b;2", "state": "Ring",'
    b' "protocol_id": "", "caller": {"name": "Ivan Petrov", "number": "+79161234567"},'
    b' "connected": {"name": "Ivan Petrov", "number": "+79161234567"}, "accountcode": "",'
    b' "dialplan": {"context": "from-trunk", "exten": "100", "priority": 3, "app_name": "Stasis",'
    b' "app_data": "pbx-service,did=100"}, "creationtime": "2026-11-25T12:55:22.863+0000",'
    b' "language": "en", "channelvars": {"DID": "100", "CALLERID(name)": "Ivan Petrov"}}'
)

STASIS_START = (
    b'{"type": "StasisStart", "timestamp": "2026-11-25T12:55:22.864+0000", "args": ["did=100"],'
    b' "channel": ' + _CHANNEL + b', "asterisk_id": "02:fc:00:00:00:01",'
    b' "application": "pbx-service"}'
)

DIAL = (
    b'{"type": "Dial", "timestamp": "2026-11-25T12:55:22.864+0000", "dialstatus": "ANSWER",'
    b' "forward": "", "dialstring": "agent1@test-caller",'
    b' "caller": {"id": "cust-1", "name": "Local/1@x;2", "state": "Up"},'
    b' "peer": {"id": "ag-1", "name": "Local/agent1@test-caller-0000003c;1", "state": "Up",'
    b' "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""},'
    b' "dialplan": {"context": "test-caller", "exten": "agent1", "priority": 1,'
    b' "app_name": "AppDial2", "app_data": "(Outgoing Line)"}},'
    b' "asterisk_id": "02:fc:00:00:00:01", "application": "pbx-service"}'
)


def test_stasis_start_fields() -> None:
    ev = parse_event(STASIS_START)
    assert ev.type == "StasisStart"
    assert ev.application == "pbx-service"
    assert ev.timestamp == "2026-11-25T12:55:22.864+0000"
    assert ev.args == ("did=100",)
    assert ev.channel_id == "1795611322.117"
    ch = ev.channel
    assert ch is not None
    assert ch.id == "1795611322.117"
    assert ch.state == "Ring"
    assert ch.caller.name == "Ivan Petrov" and ch.caller.number == "+79161234567"
    assert ch.dialplan.context == "from-trunk" and ch.dialplan.priority == 3
    assert ch.dialplan.app_data == "pbx-service,did=100"
    assert ch.channelvars == {"DID": "100", "CALLERID(name)": "Ivan Petrov"}
    assert ch.language == "en"
    assert ev.peer is None and ev.bridge is None and ev.playback is None


def test_typed_values_are_built_lazily_once() -> None:
    ev = parse_event(STASIS_START)
    # Nothing typed exists until asked for: parsing must stay cheap.
    with pytest.raises(AttributeError):
        object.__getattribute__(ev, "_channel")
    first = ev.channel
    assert ev.channel is first


def test_models_are_immutable_and_channelvars_read_only() -> None:
    ch = parse_event(STASIS_START).channel
    assert ch is not None
    with pytest.raises(AttributeError):
        ch.state = "Up"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ch.channelvars["DID"] = "x"  # type: ignore[index]
    assert hash(ch) == hash(parse_event(STASIS_START).channel)


def test_dial_peer_caller_and_status() -> None:
    ev = parse_event(DIAL)
    assert ev.dialstatus == "ANSWER"
    assert ev.peer is not None and ev.peer.id == "ag-1"
    assert ev.peer.dialplan.app_name == "AppDial2"
    assert ev.caller is not None and ev.caller.id == "cust-1"
    assert ev.channel is None and ev.channel_id is None


def test_dtmf_hangup_varset_userevent() -> None:
    dtmf = parse_event(
        b'{"type": "ChannelDtmfReceived", "digit": "#", "duration_ms": 150,'
        b' "channel": {"id": "c1"}, "application": "pbx-service"}'
    )
    assert (dtmf.digit, dtmf.duration_ms, dtmf.channel_id) == ("#", 150, "c1")

    app_hangup = parse_event(
        b'{"cause": 32, "soft": true, "type": "ChannelHangupRequest", "channel": {"id": "c1"}}'
    )
    assert app_hangup.cause == 32 and app_hangup.soft is True
    caller_hangup = parse_event(
        b'{"type": "ChannelHangupRequest", "cause": 16, "channel": {"id": "c1"}}'
    )
    assert caller_hangup.cause == 16 and caller_hangup.soft is False

    destroyed = parse_event(
        b'{"type": "ChannelDestroyed", "cause": 19, "cause_txt": "User alerting, no answer",'
        b' "channel": {"id": "c1"}}'
    )
    assert destroyed.cause == 19 and destroyed.cause_txt == "User alerting, no answer"

    varset = parse_event(
        b'{"variable": "X_TEST_VAR", "value": "abc", "type": "ChannelVarset",'
        b' "channel": {"id": "c1"}}'
    )
    assert (varset.variable, varset.value) == ("X_TEST_VAR", "abc")

    user = parse_event(
        b'{"type": "ChannelUserevent", "eventname": "StasisReturned",'
        b' "userevent": {"eventname": "StasisReturned", "status": "FAILED", "did": "701"},'
        b' "channel": {"id": "c1"}}'
    )
    assert user.eventname == "StasisReturned" and user.userevent["status"] == "FAILED"


def test_playback_recording_bridge_events() -> None:
    pb = parse_event(
        b'{"type": "PlaybackStarted", "playback": {"id": "pb-s01-1", "media_uri":'
        b' "sound:hello-world", "next_media_uri": "digits:123", "target_uri":'
        b' "channel:1795611322.117", "language": "en", "state": "playing"}}'
    ).playback
    assert pb is not None
    assert (pb.id, pb.state, pb.next_media_uri) == ("pb-s01-1", "playing", "digits:123")
    assert pb.target_uri == "channel:1795611322.117"

    rec = parse_event(
        b'{"type": "RecordingFailed", "recording": {"name": "r17-chan", "format": "wav",'
        b' "state": "failed", "target_uri": "channel:cust-1700-2",'
        b' "cause": "Cannot record channel while in bridge"}}'
    ).recording
    assert rec is not None
    assert rec.state == "failed" and rec.cause == "Cannot record channel while in bridge"
    assert rec.duration is None

    fin = parse_event(
        b'{"type": "RecordingFinished", "recording": {"name": "vm/400/m1", "format": "wav",'
        b' "state": "done", "target_uri": "channel:c1", "duration": 0, "talking_duration": 0,'
        b' "silence_duration": 0}}'
    ).recording
    assert fin is not None and fin.duration == 0 and fin.talking_duration == 0

    entered = parse_event(
        b'{"type": "ChannelEnteredBridge", "bridge": {"id": "br-300", "technology":'
        b' "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis", "creator":'
        b' "Stasis", "name": "call-300", "channels": ["c1", "c2"], "creationtime":'
        b' "2026-11-25T12:55:48.422+0000", "video_mode": "talker"}, "channel": {"id": "c2"}}'
    )
    br = entered.bridge
    assert br is not None
    assert (br.id, br.technology, br.bridge_type, br.creator) == (
        "br-300",
        "simple_bridge",
        "mixing",
        "Stasis",
    )
    assert br.channels == ("c1", "c2")
    assert entered.bridge_id == "br-300"


def test_device_state_and_endpoint() -> None:
    ev = parse_event(
        b'{"type": "DeviceStateChanged", "application": "pbx-service", "device_state":'
        b' {"name": "Stasis:pbx-callbacks", "state": "BUSY"}}'
    )
    assert ev.device_state is not None
    assert (ev.device_state.name, ev.device_state.state) == ("Stasis:pbx-callbacks", "BUSY")
    ep = parse_event(
        b'{"type": "EndpointStateChange", "endpoint": {"technology": "PJSIP", "resource":'
        b' "101", "state": "online", "channel_ids": ["a"]}}'
    ).endpoint
    assert ep is not None and ep.channel_ids == ("a",) and ep.state == "online"


def test_unicode_and_unknown_type_pass_through() -> None:
    ev = parse_event(
        '{"type": "SomethingNew", "channel": {"id": "c", "caller": {"name": "Company — Name",'
        ' "number": "+74951234567"}}, "brand_new_field": [1, 2]}'.encode()
    )
    assert ev.type == "SomethingNew"
    assert ev.channel is not None and ev.channel.caller.name == "Company — Name"
    assert ev.raw["brand_new_field"] == [1, 2]


def test_missing_and_wrongly_typed_fields_are_tolerated() -> None:
    ev = parse_event(
        b'{"type": "StasisStart", "channel": {"id": "c", "caller": null, "dialplan": "x",'
        b' "channelvars": {"A": null, "B": 5}}, "args": "not-a-list", "cause": "17"}'
    )
    ch = ev.channel
    assert ch is not None
    assert ch.caller.name == "" and ch.dialplan.context == "" and ch.creationtime == ""
    assert ch.channelvars == {"A": "", "B": "5"}
    assert ev.args == ()
    assert ev.cause == 17
    assert ev.digit is None and ev.dialstatus is None and ev.soft is False


def test_application_replaced_has_no_channel() -> None:
    ev = parse_event(
        b'{"type": "ApplicationReplaced", "timestamp": "2026-11-25T12:57:36.206+0000",'
        b' "application": "pbx-service", "asterisk_id": "02:fc:00:00:00:01"}'
    )
    assert ev.type == "ApplicationReplaced" and ev.channel_id is None and ev.channel is None
    assert repr(ev) == "AriEvent(ApplicationReplaced)"


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (b"not json at all", "not-json"),
        (b'{"type": "StasisStart"', "not-json"),
        (b"", "not-json"),
        (b'["type", "StasisStart"]', "not-object"),
        (b'"StasisStart"', "not-object"),
        (b'{"channel": {"id": "c1"}}', "no-type"),
        (b'{"type": 5}', "no-type"),
        (b'{"type": ""}', "no-type"),
    ],
)
def test_bad_frames_raise_frame_error(frame: bytes, kind: str) -> None:
    with pytest.raises(AriFrameError) as info:
        parse_event(frame)
    assert info.value.kind == kind
    assert info.value.error_id == "ari-bad-frame"


def test_parse_accepts_str() -> None:
    assert parse_event('{"type": "StasisEnd", "channel": {"id": "c9"}}').channel_id == "c9"


def test_bad_frame_log_logs_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.ari.badframes")
    bad = BadFrameLog(logger)
    with caplog.at_level(logging.WARNING, logger="test.ari.badframes"):
        for _ in range(5):
            bad.report(AriFrameError("not-json", "x"))
        bad.report(AriFrameError("binary", "3 bytes"))
    assert bad.counts == {"not-json": 5, "binary": 1}
    assert len(caplog.records) == 2


def test_parse_timestamp() -> None:
    ts = parse_timestamp("2026-11-25T12:55:22.863+0000")
    assert ts is not None and ts.microsecond == 863000 and ts.utcoffset() is not None
    assert parse_timestamp("garbage") is None
    assert parse_timestamp(None) is None


def test_event_is_slotted() -> None:
    ev = AriEvent({"type": "X"})
    with pytest.raises(AttributeError):
        ev.anything = 1  # type: ignore[attr-defined]
