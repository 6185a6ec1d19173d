"""The request validator (`tests.contract.schema`) on requests taken from the traces."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contract import harness
from tests.contract.reference import require_reference
from tests.contract.schema import validate_logged_requests, validate_request

# Requests real Asterisk accepted (2xx) although they break the schema: the validator is
# stricter on purpose, since it checks what *our* daemon sends.
LENIENT_ASTERISK: dict[tuple[str, int], str] = {
    ("05", 60): "timeout=abc is not an int",
    ("11", 70): "deviceState=inuse is lower case",
}


def _rest_lines() -> list[tuple[str, dict[str, Any]]]:
    ref = require_reference()
    out: list[tuple[str, dict[str, Any]]] = []
    for path in harness.trace_files(ref / "traces"):
        prefix = harness.trace_prefix(path)
        if not prefix.isdigit():
            continue
        for raw in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(raw)
            if d.get("kind") == "rest":
                out.append((prefix, d))
    return out


def test_accepted_trace_requests_are_valid() -> None:
    """Every request Asterisk answered with 2xx validates, except the known lenient ones."""
    checked = 0
    for prefix, d in _rest_lines():
        if not 200 <= int(d["status"]) < 300:
            continue
        problems = validate_request(d["method"], d["path"], d["query"], d["body"])
        key = (prefix, int(d["seq"]))
        if key in LENIENT_ASTERISK:
            assert problems, f"{key}: {LENIENT_ASTERISK[key]} should be reported"
            continue
        assert not problems, f"trace {prefix} seq {d['seq']}: {problems}"
        checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    ("prefix", "seq", "fragment"),
    [
        ("02", 27, "'operation'='stop' not one of"),
        ("02", 28, "required query parameter 'operation' missing"),
        ("04", 29, "no such path"),  # unencoded '/' in a recording name
        ("04", 58, "'terminateOn'='Z' not one of"),
        ("04", 59, "required query parameter 'name' missing"),
        ("05", 57, "required query parameter 'endpoint' missing"),
        ("05", 118, "'reason'='bogus' not one of"),
        ("05", 124, "no such path"),
        ("05", 128, "method not allowed"),
        ("11", 69, "'deviceState'='FOO' not one of"),
        ("11", 73, "required query parameter 'deviceState' missing"),
        ("11", 74, "method not allowed"),
        ("11", 145, "required query parameter 'eventSource' missing"),
        ("15", 40, "required query parameter 'variable' missing"),
        ("15", 43, "required query parameter 'variables' missing"),
        ("15", 68, "required body field 'variables' missing"),
        ("15", 183, "required query parameter 'endpoint' missing"),
    ],
)
def test_rejected_trace_requests_are_flagged(prefix: str, seq: int, fragment: str) -> None:
    """Requests Asterisk refused for a parameter problem are reported with that problem."""
    lines = {(p, int(d["seq"])): d for p, d in _rest_lines()}
    d = lines[(prefix, seq)]
    assert int(d["status"]) >= 400
    problems = validate_request(d["method"], d["path"], d["query"], d["body"])
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "fragment"),
    [
        ("POST", "/ari/channels/x/play", {"media": "sound:a", "volume": "3"}, None, "unknown"),
        (
            "POST",
            "/ari/channels/x/variable",
            {"variable": "A", "report_events": "yes"},
            None,
            "not true/false",
        ),
        ("POST", "/ari/channels/x/dtmf", {"dtmf": "1", "duration": "long"}, None, "not an integer"),
        (
            "POST",
            "/ari/channels/x/record",
            {"name": "r", "format": "wav", "maxDurationSeconds": "-1"},
            None,
            "below 0",
        ),
        ("GET", "/ari/asterisk/info", {"only": "build,nonsense"}, None, "'nonsense'"),
        (
            "POST",
            "/ari/channels",
            {"endpoint": "Local/1@x"},
            {"variables": {"A": 1}},
            "variables.A",
        ),
        ("POST", "/ari/channels", {"endpoint": "Local/1@x"}, {"colour": "red"}, "unknown body"),
        ("POST", "/ari/channels", {"endpoint": "Local/1@x"}, ["x"], "must be an object"),
        ("DELETE", "/ari/channels/x", {"reason": "hungry"}, None, "not one of"),
        ("PATCH", "/ari/channels/x", {}, None, "method not allowed"),
    ],
)
def test_synthetic_bad_requests(
    method: str, path: str, query: dict[str, str], body: Any, fragment: str
) -> None:
    problems = validate_request(method, path, query, body)
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        # Literal segments win over ids: /channels/create is not "channel create".
        ("POST", "/ari/channels/create", {"endpoint": "Local/1@x", "app": "a"}, None),
        # A recording name with '/' must be percent-encoded.
        ("GET", "/ari/recordings/stored/voicemail%2F400%2Fmsg-1", {}, None),
        ("POST", "/channels/x/dtmf", {"dtmf": "12", "between": "200"}, None),
        ("GET", "/ari/events", {"app": "a,b", "subscribeAll": "true", "api_key": "u:p"}, None),
        (
            "POST",
            "/ari/channels",
            {"endpoint": "Local/1@x", "app": "a"},
            {"variables": {"A": "1", "B": {"value": "b", "report_events": True}}},
        ),
        # Query parameters may also travel in the JSON body.
        ("POST", "/ari/channels", {}, {"endpoint": "Local/1@x", "app": "a"}),
        ("PUT", "/ari/applications/a/eventFilter", {}, {"allowed": [{"type": "StasisStart"}]}),
    ],
)
def test_synthetic_good_requests(method: str, path: str, query: dict[str, str], body: Any) -> None:
    assert validate_request(method, path, query, body) == []


def test_request_log_validation_names_the_bad_request() -> None:
    log: list[dict[str, Any]] = [
        {"method": "POST", "path": "/ari/channels/c1/answer", "query": {}, "body": None},
        {"method": "POST", "path": "/ari/channels/c1/dtmf", "query": {"digits": "1"}},
        {"method": "GET", "path": "/ari/recordings/stored/vm%2F400%2Fa", "query": {}},
    ]
    problems = validate_logged_requests(log)
    assert len(problems) == 1, problems
    assert problems[0].startswith("request #1 (POST /ari/channels/c1/dtmf)")
    assert "'digits'" in problems[0]
