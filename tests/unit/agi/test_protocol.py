"""FastAGI wire format on raw bytes: request blocks, replies, quoting, the incremental decoder."""

from __future__ import annotations

import itertools
import json
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx_service.agi.errors import AgiArgumentError, AgiError, AgiProtocolError
from pbx_service.agi.protocol import (
    MAX_COMMAND_BYTES,
    AgiDecoder,
    AgiHangupNotice,
    AgiRequest,
    AgiResult,
    format_command,
    parse_reply,
    parse_request,
    quote,
)
from pbx_service.agi.testing import request_block
from pbx_service.errors import PbxError

TRACE = (
    pathlib.Path(__file__).resolve().parents[3].parent
    / "shared/ari-reference/traces/08_ami_and_fastagi.jsonl"
)

REQUEST_BLOCK = (
    b"agi_network: yes\n"
    b"agi_network_script: route?lang=ru&x=1\n"
    b"agi_request: agi://127.0.0.1:4573/route?lang=ru&x=1\n"
    b"agi_channel: PJSIP/trunk-00000001\n"
    b"agi_language: ru\n"
    b"agi_uniqueid: 1795611470.171\n"
    b"agi_callerid: +74951234567\n"
    b"agi_calleridname: \xd0\x97\xd0\xbe\xc3\xab: test\n"
    b"agi_context: agi-test\n"
    b"agi_extension: 123\n"
    b"agi_accountcode: \n"
    b"agi_arg_1: 123\n"
    b"agi_arg_2: extra-arg\n"
    b"agi_arg_3: \n"
    b"\n"
)


def trace_records(kind: str) -> list[dict[str, Any]]:
    if not TRACE.exists():
        pytest.skip(f"Asterisk trace not found at {TRACE} (the shared ari-reference folder)")
    with TRACE.open(encoding="utf-8") as fh:
        return [r for r in map(json.loads, fh) if r["kind"] == kind]


# -- request block -------------------------------------------------------------------------


def test_request_block_parses_env_route_query_and_args() -> None:
    request = parse_request(REQUEST_BLOCK)
    assert request.script == "route"
    assert dict(request.query) == {"lang": "ru", "x": "1"}
    assert request.args == ("123", "extra-arg", "")
    assert request.channel == "PJSIP/trunk-00000001"
    assert request.callerid == "+74951234567"
    assert request.calleridname == "Зоë: test"  # value keeps its own ": "
    assert request.env["agi_accountcode"] == ""
    assert request.get("language") == request.get("agi_language") == "ru"
    assert request.uniqueid == "1795611470.171"
    assert (request.context, request.extension) == ("agi-test", "123")


def test_request_args_are_ordered_numerically_not_alphabetically() -> None:
    lines = [f"agi_arg_{n}: v{n}" for n in range(12, 0, -1)]
    request = parse_request("agi_request: agi://h/r\n" + "\n".join(lines) + "\n\n")
    assert request.args == tuple(f"v{n}" for n in range(1, 13))


def test_request_route_falls_back_to_network_script() -> None:
    request = parse_request(b"agi_network: yes\nagi_network_script: ivr/main?a=b\n\n")
    assert (request.script, dict(request.query)) == ("ivr/main", {"a": "b"})


def test_request_block_from_the_asterisk_trace() -> None:
    (record,) = trace_records("agi_request")
    headers: dict[str, str] = record["headers"]
    raw = "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"
    request = parse_request(raw)
    assert dict(request.env) == headers
    assert request.script == "route"
    assert request.args == ("123", "extra-arg")
    assert request.callerid == "+79160000123"


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network: yes\nnot a header\n\n",
        b"agi_network: yes\nagi_channel: x\n\n",  # no agi_request: no route
        b"\n",
    ],
)
def test_bad_request_block_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(AgiProtocolError) as info:
        parse_request(raw)
    assert isinstance(info.value, PbxError)
    assert info.value.error_id == "agi-protocol"


# -- replies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiResult(200, "0")),
        ("200 result=1 (+79160000123)", AgiResult(200, "1", "+79160000123")),
        ("200 result=0 endpos=3404", AgiResult(200, "0", "", {"endpos": "3404"})),
        ("200 result=49 (dtmf) endpos=8000", AgiResult(200, "49", "dtmf", {"endpos": "8000"})),
        ("200 result=1 (a (nested) value)", AgiResult(200, "1", "a (nested) value")),
        ("200 result= (timeout)", AgiResult(200, "", "timeout")),
        ("200 result=-1", AgiResult(200, "-1")),
        ("510 Invalid or unknown command", AgiResult(510, "", "Invalid or unknown command")),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            AgiResult(511, "", "Command Not Permitted on a dead channel or intercept routine"),
        ),
        ("100 result=0 Trying...", AgiResult(100, "", "result=0 Trying...")),
    ],
)
def test_single_line_replies(line: str, expected: AgiResult) -> None:
    assert parse_reply([line]) == expected


def test_result_ok_flag() -> None:
    assert parse_reply(["200 result=1"]).ok
    assert not parse_reply(["200 result=-1"]).ok
    assert not parse_reply(["510 Invalid or unknown command"]).ok


def test_replies_from_the_asterisk_trace() -> None:
    records = trace_records("agi_command")
    assert records
    for record in records:
        r = record["result"]
        value, data = r["result"]
        code = r["status_code"]
        if code == 510:
            line = "510 Invalid or unknown command"
        else:
            line = f"{code} result={value}" + (f" ({data})" if data else "")
            if "endpos" in r:
                line += f" endpos={r['endpos'][0]}"
        result = AgiDecoder().feed(b"agi_request: agi://h/r\n\n" + line.encode() + b"\n")[1]
        assert isinstance(result, AgiResult)
        assert result.code == code
        if code == 200:
            assert (result.result, result.data) == (value, data)
            assert result.extra.get("endpos") == (r["endpos"][0] if "endpos" in r else None)


def test_usage_reply_spans_lines_until_the_closing_code() -> None:
    decoder = AgiDecoder()
    decoder.feed(b"agi_request: agi://h/r\n\n")
    raw = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: STREAM FILE <filename> <escape digits> [sample offset]\n"
        b"\n"
        b"  Send the given file.\n"
        b"520 End of proper usage.\n"
    )
    assert decoder.feed(raw[:60]) == []
    (result,) = decoder.feed(raw[60:])
    assert isinstance(result, AgiResult)
    assert result.code == 520
    assert result.data.splitlines() == [
        "Invalid command syntax.  Proper usage follows:",
        " Usage: STREAM FILE <filename> <escape digits> [sample offset]",
        "",
        "  Send the given file.",
        "End of proper usage.",
    ]


def test_hangup_line_between_replies() -> None:
    decoder = AgiDecoder()
    messages = decoder.feed(
        b"agi_request: agi://h/r\n\n200 result=-1 endpos=0\nHANGUP\n511 Command Not Permitted\n"
    )
    assert [type(m) for m in messages] == [AgiRequest, AgiResult, AgiHangupNotice, AgiResult]


def test_garbage_reply_is_a_protocol_error() -> None:
    decoder = AgiDecoder()
    decoder.feed(b"agi_request: agi://h/r\n\n")
    with pytest.raises(AgiProtocolError):
        decoder.feed(b"hello there\n")


# -- the incremental decoder ---------------------------------------------------------------

STREAM = (
    REQUEST_BLOCK
    + b"200 result=1 (\xd0\x97\xd0\xbe\xc3\xab)\r\n"
    + b"520-Invalid command syntax.  Proper usage follows:\nUsage: X\n520 End of proper usage.\n"
    + b"HANGUP\n"
)


def decode_all(chunks: list[bytes]) -> list[Any]:
    decoder = AgiDecoder()
    out: list[Any] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    decoder.feed_eof()
    return out


def test_decoder_byte_by_byte_matches_one_chunk() -> None:
    whole = decode_all([STREAM])
    assert [type(m) for m in whole] == [AgiRequest, AgiResult, AgiResult, AgiHangupNotice]
    assert whole[1].data == "Зоë"
    assert decode_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == whole


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_decoder_any_split_gives_the_same_messages(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode_all(chunks) == decode_all([STREAM])


def test_decoder_truncated_request_block_at_eof() -> None:
    decoder = AgiDecoder()
    assert decoder.feed(REQUEST_BLOCK[:50]) == []
    with pytest.raises(AgiProtocolError, match="inside the FastAGI request block"):
        decoder.feed_eof()


def test_decoder_oversized_request_block_is_rejected_before_it_ends() -> None:
    decoder = AgiDecoder(max_request_bytes=100)
    decoder.feed(b"agi_network: yes\n")
    with pytest.raises(AgiProtocolError, match="exceeds 100 bytes"):
        decoder.feed(b"agi_x: " + b"y" * 200)  # no newline yet: still caught


def test_decoder_oversized_reply_is_rejected() -> None:
    decoder = AgiDecoder(max_reply_bytes=64)
    decoder.feed(b"agi_request: agi://h/r\n\n")
    with pytest.raises(AgiProtocolError, match="reply exceeds"):
        decoder.feed(b"520-usage\n" + b"x" * 100)


# -- formatting ----------------------------------------------------------------------------


def asterisk_parse_args(line: str) -> list[str]:
    """A port of res_agi.c parse_args(): how Asterisk splits a command line into words."""
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                current = []
                args.append("")
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                args[-1] = "".join(current)
            current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if current is None:
            current = []
            args.append("")
        current.append(char)
        escaped = False
    if current is not None:
        args[-1] = "".join(current)
    return args


def test_format_command_quotes_every_argument() -> None:
    line = format_command("SET VARIABLE", "CALLERID(num)", "+74951234567")
    assert line == b'SET VARIABLE "CALLERID(num)" "+74951234567"\n'
    assert format_command("STREAM FILE", "beep", "") == b'STREAM FILE "beep" ""\n'
    assert format_command("VERBOSE", 'say "hi"\\', 1) == b'VERBOSE "say \\"hi\\"\\\\" "1"\n'


@pytest.mark.parametrize(
    "value", ["x\nHANGUP", "x\rHANGUP", "a\x00b", '" \nEXEC System rm', "lone \ud800 surrogate"]
)
def test_a_value_cannot_inject_a_second_command(value: str) -> None:
    with pytest.raises(AgiArgumentError) as info:
        format_command("SET VARIABLE", "CALLERID(name)", value)
    assert isinstance(info.value, AgiError)
    assert info.value.error_id == "agi-bad-argument"


def test_a_line_longer_than_asterisks_buffer_is_refused() -> None:
    fits = "x" * (MAX_COMMAND_BYTES - len('VERBOSE ""\n'))
    assert len(format_command("VERBOSE", fits)) == MAX_COMMAND_BYTES
    with pytest.raises(AgiArgumentError, match="2047"):
        format_command("VERBOSE", fits + "x")


def test_verb_must_be_words() -> None:
    with pytest.raises(AgiArgumentError, match="verb"):
        format_command('EXEC "x"')
    with pytest.raises(AgiArgumentError, match="verb"):
        format_command("SET VARIABLE\nHANGUP")


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]),
            max_size=30,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_quoted_arguments_reach_asterisk_unchanged(values: list[str]) -> None:
    line = format_command("SET VARIABLE", *values).decode().rstrip("\n")
    assert asterisk_parse_args(line) == ["SET", "VARIABLE", *values]


def test_quote_alone() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote(42) == '"42"'


def test_testing_request_block_is_what_the_parser_expects() -> None:
    raw = request_block("ivr/main?team=sales", args=["a", "b"], callerid="+74951234567")
    request = parse_request(raw)
    assert (request.script, dict(request.query)) == ("ivr/main", {"team": "sales"})
    assert request.args == ("a", "b")
    assert request.callerid == "+74951234567"


@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_protocol_errors(noise: bytes) -> None:
    for prefix in (b"", b"agi_request: agi://h/r\n\n"):
        decoder = AgiDecoder(max_request_bytes=200, max_reply_bytes=200)
        try:
            decoder.feed(prefix + noise)
            decoder.feed_eof()
        except AgiProtocolError:
            pass
