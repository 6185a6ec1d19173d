"""AMI frames on raw bytes: the Asterisk 22 trace, Output lists, legacy Follows blocks."""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx_service.ami.errors import AmiArgumentError, AmiProtocolError
from pbx_service.ami.protocol import (
    AmiFrameDecoder,
    format_action,
    parse_banner,
    parse_frames,
)

TRACE = (
    pathlib.Path(__file__).resolve().parents[3].parent
    / "shared/ari-reference/traces/08_ami_and_fastagi.jsonl"
)


def trace_messages() -> list[dict[str, Any]]:
    """Every AMI response and event frame recorded from Asterisk 22, in order."""
    if not TRACE.exists():
        pytest.skip(f"Asterisk trace not found at {TRACE} (the shared ari-reference folder)")
    out: list[dict[str, Any]] = []
    with TRACE.open(encoding="utf-8") as fh:
        for record in map(json.loads, fh):
            if record["kind"] == "ami_event":
                out.append(record["message"])
            elif record["kind"] == "ami_response":
                out.extend(record.get("messages") or [record["message"]])
    return [{k: v for k, v in m.items() if k != "content"} for m in out]


def wire(message: dict[str, Any]) -> bytes:
    """A recorded frame back on the wire as Asterisk writes it."""
    lines: list[str] = []
    for key, value in message.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {item}\r\n")
    return "".join(lines).encode() + b"\r\n"


def test_every_frame_of_the_asterisk_trace_round_trips() -> None:
    messages = trace_messages()
    assert len(messages) > 150
    raw = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(map(wire, messages))
    assert parse_frames(raw) == messages


def test_trace_command_output_is_a_list_of_lines() -> None:
    (command,) = [m for m in trace_messages() if m.get("Message") == "Command output follows"]
    (frame,) = parse_frames(wire(command))
    output = frame["Output"]
    assert isinstance(output, list)
    assert output[0].startswith("Channel ")
    assert output[0].endswith(" ")  # trailing padding kept
    assert output[-1] == "69 calls processed"


def test_single_output_line_is_still_a_list() -> None:
    raw = b"Response: Success\r\nMessage: Command output follows\r\nOutput: only line\r\n\r\n"
    assert parse_frames(raw) == [
        {"Response": "Success", "Message": "Command output follows", "Output": ["only line"]}
    ]


def test_repeated_key_becomes_a_list_and_values_keep_colons() -> None:
    raw = (
        b"Event: VarSet\r\nVariable: A\r\nVariable: B\r\nValue: http://x:80/ a: b\r\n"
        b"SystemName: \r\n\r\n"
    )
    assert parse_frames(raw) == [
        {
            "Event": "VarSet",
            "Variable": ["A", "B"],
            "Value": "http://x:80/ a: b",
            "SystemName": "",
        }
    ]


LEGACY = (
    b"Asterisk Call Manager/2.10.4\r\n"
    b"Response: Follows\r\n"
    b"Privilege: Command\r\n"
    b"ActionID: 7\r\n"
    b"Channel              Location             State   Application(Data)\n"
    b"\n"
    b"Key: looks like a header\n"
    b"0 active channels\n"
    b"--END COMMAND--\r\n"
    b"\r\n"
    b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n"
)


def test_legacy_follows_block() -> None:
    assert parse_frames(LEGACY) == [
        {
            "Response": "Follows",
            "Privilege": "Command",
            "ActionID": "7",
            "Output": [
                "Channel              Location             State   Application(Data)",
                "",
                "Key: looks like a header",
                "0 active channels",
            ],
        },
        {"Event": "FullyBooted", "Status": "Fully Booted"},
    ]


def test_legacy_follows_with_marker_glued_to_the_last_line() -> None:
    raw = b"Response: Follows\r\nPrivilege: Command\r\nNo such command--END COMMAND--\r\n\r\n"
    assert parse_frames(raw) == [
        {"Response": "Follows", "Privilege": "Command", "Output": ["No such command"]}
    ]


def test_legacy_follows_without_end_marker_is_an_error() -> None:
    with pytest.raises(AmiProtocolError, match="END COMMAND"):
        parse_frames(b"Response: Follows\r\nPrivilege: Command\r\nsome output\n")


def test_garbage_line_is_an_error() -> None:
    with pytest.raises(AmiProtocolError, match="not 'Key: Value'"):
        parse_frames(b"Response: Success\r\nthis is not a header\r\n\r\n")


def test_banner() -> None:
    assert parse_banner("Asterisk Call Manager/11.0.0\r\n") == "11.0.0"
    assert parse_banner("Response: Success") is None


STREAM = LEGACY + "Event: Newchannel\r\nCallerIDName: Zoë Ёлкина\r\n\r\n".encode()


def decode(chunks: list[bytes]) -> tuple[list[dict[str, Any]], str | None]:
    decoder = AmiFrameDecoder()
    frames: list[dict[str, Any]] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    return frames, decoder.version


def test_decoder_byte_by_byte_keeps_utf8_intact() -> None:
    frames, version = decode([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert version == "2.10.4"
    assert frames == parse_frames(STREAM)
    assert frames[-1]["CallerIDName"] == "Zoë Ёлкина"


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=10))
def test_decoder_any_split_gives_the_same_frames(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode(chunks) == decode([STREAM])


def test_format_action_repeats_list_values() -> None:
    raw = format_action(
        {"Action": "Originate", "Variable": ["A=1", "B=2"], "Timeout": 20000, "Async": "true"}
    )
    assert raw == (
        b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nTimeout: 20000\r\n"
        b"Async: true\r\n\r\n"
    )
    assert parse_frames(raw) == [
        {"Action": "Originate", "Variable": ["A=1", "B=2"], "Timeout": "20000", "Async": "true"}
    ]


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "Originate", "CallerID": "x\r\nAction: Hangup"},
        {"Action": "Originate", "Variable": ["A=1", "B=\n"]},
        {"Action": "Ping", "Bad Key": "x"},
        {"Action\r\nX": "Ping"},
        {"Action": "Originate", "CallerID": "lone \ud800 surrogate"},
    ],
)
def test_format_action_refuses_injection(action: dict[str, Any]) -> None:
    with pytest.raises(AmiArgumentError) as info:
        format_action(action)
    assert info.value.error_id == "ami-bad-argument"


@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_protocol_errors(noise: bytes) -> None:
    try:
        parse_frames(noise)
    except AmiProtocolError:
        pass
    try:
        AmiFrameDecoder(max_frame_bytes=100).feed(noise)
    except AmiProtocolError:
        pass


def test_panoramisk_is_the_version_the_shim_patches() -> None:
    # client.py overrides panoramisk internals (data_received, handle_message, login,
    # connection_made/lost, ping, awaiting_actions); re-check them before moving the pin.
    assert importlib.metadata.version("panoramisk") == "1.4"
