"""list_calls / call_summary against a real database filled through the writer, and
render_calls on what they return."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pbx_service.ops.calllog import CallLogFormatError, render_calls
from pbx_service.ops.text import display_width
from pbx_service.store.errors import DatabaseUnavailableError
from pbx_service.store.queries import call_summary, list_calls
from pbx_service.store.records import CallRecord, Outcome
from pbx_service.store.writer import CallLogWriter
from tests.store.helpers import T0, UNREACHABLE_URL, make_call

REQUIRED_KEYS = {
    "id", "started_at", "answered_at", "ended_at", "caller", "caller_name", "did",
    "line_label", "listed", "outcome", "answered_by", "wait_seconds", "talk_seconds",
    "recording", "voicemail", "category", "menu_path", "events",
}  # fmt: skip


def _ended(call: CallRecord, outcome: Outcome | None, wait: float | None = None) -> CallRecord:
    call.ended_at = call.started_at + timedelta(seconds=60)
    call.outcome = outcome
    call.wait_seconds = wait
    return call


def _calls() -> list[CallRecord]:
    answered = make_call(0, line_label="Sales", caller_name='Zoë "Z" O\'Neil')
    answered.add_event(T0, "ivr", digit="1", seq=999)
    answered.add_event(T0 + timedelta(seconds=5), "queue", team="sales")
    answered.menu_path.extend(["main", "sales"])
    answered.answered_at = T0 + timedelta(seconds=20)
    answered.answered_by = "alice"
    answered.talk_seconds = 95.5
    _ended(answered, Outcome.ANSWERED, wait=20.0)
    return [
        answered,
        _ended(make_call(1, line_label="Sales"), Outcome.VOICEMAIL, wait=40.0),
        _ended(make_call(2, line_label="Support"), Outcome.ABANDONED, wait=30.0),
        _ended(make_call(3, line_label="Support"), Outcome.FAILED),
        _ended(make_call(4, line_label=None), None),  # ended, no outcome: lost
        make_call(5, line_label="Support"),  # in progress
        _ended(make_call(6, line_label="Sales"), Outcome.CALLBACK, wait=10.0),
    ]


@pytest.fixture
async def filled(database_url: str, tmp_path: Path) -> tuple[str, list[CallRecord]]:
    calls = _calls()
    writer = CallLogWriter(database_url, tmp_path / "spool")
    await writer.start()
    for call in reversed(calls):  # insertion order must not matter
        writer.submit(call)
    await writer.close()
    return database_url, calls


async def test_list_calls_oldest_first_with_events(
    filled: tuple[str, list[CallRecord]],
) -> None:
    url, calls = filled
    rows = await list_calls(url)
    assert [r["id"] for r in rows] == [str(c.id) for c in calls]
    first = rows[0]
    assert REQUIRED_KEYS <= first.keys()
    assert first["started_at"] == "2026-11-25T09:00:00+00:00"
    assert datetime.fromisoformat(first["answered_at"]) == calls[0].answered_at
    assert first["caller"] == calls[0].caller_number
    assert first["caller_name"] == 'Zoë "Z" O\'Neil'
    assert first["menu_path"] == ["main", "sales"]
    assert first["events"] == [
        {"seq": 1, "at": "2026-11-25T09:00:00+00:00", "kind": "ivr", "digit": "1"},
        {"seq": 2, "at": "2026-11-25T09:00:05+00:00", "kind": "queue", "team": "sales"},
    ]
    assert rows[5]["ended_at"] is None and rows[5]["outcome"] is None
    orjson.dumps(rows)  # JSON-ready


async def test_list_calls_since_and_limit(filled: tuple[str, list[CallRecord]]) -> None:
    url, calls = filled
    since = await list_calls(url, since=T0 + timedelta(minutes=2))
    assert [r["id"] for r in since] == [str(c.id) for c in calls[2:]]
    tail = await list_calls(url, limit=2)
    assert [r["id"] for r in tail] == [str(c.id) for c in calls[-2:]]
    both = await list_calls(url, since=T0 + timedelta(minutes=5), limit=10)
    assert [r["id"] for r in both] == [str(c.id) for c in calls[5:]]
    assert await list_calls(url, limit=0) == []


async def test_call_summary_counts(filled: tuple[str, list[CallRecord]]) -> None:
    url, _ = filled
    summary = await call_summary(url)
    assert summary["total"] == 7
    assert summary["in_progress"] == 1
    assert summary["answered"] == 1
    # Abandoned and failed calls made callback tasks: only the one without an outcome is lost.
    assert summary["lost"] == 1
    assert summary["ended_without_outcome"] == 1
    assert summary["average_wait_seconds"] == pytest.approx((20 + 40 + 30 + 10) / 4)
    assert summary["by_outcome"] == {
        "answered": 1, "voicemail": 1, "callback": 1, "abandoned": 1, "self_service": 0,
        "transferred": 0, "overflow": 0, "failed": 1,
    }  # fmt: skip
    assert summary["by_line"] == {"": 1, "Sales": 3, "Support": 3}
    later = await call_summary(url, since=T0 + timedelta(minutes=3))
    assert later["total"] == 4 and later["since"].endswith("+00:00")


async def test_empty_database(database_url: str) -> None:
    assert await list_calls(database_url) == []
    summary = await call_summary(database_url)
    assert summary["total"] == 0 and summary["average_wait_seconds"] is None
    assert render_calls([], "csv").splitlines() == [render_calls([], "csv").strip()]
    assert "(no calls)" in render_calls([], "table")
    assert render_calls([], "json").strip() == "[]"


async def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailableError):
        await list_calls(UNREACHABLE_URL)


async def test_render_json_is_the_rows(filled: tuple[str, list[CallRecord]]) -> None:
    rows = await list_calls(filled[0])
    assert orjson.loads(render_calls(rows, "json")) == rows


async def test_render_csv(filled: tuple[str, list[CallRecord]]) -> None:
    rows = await list_calls(filled[0])
    text = render_calls(rows, "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows)
    assert parsed[0]["menu_path"] == "main>sales"
    assert parsed[0]["events"] == "2"
    assert parsed[0]["caller_name"] == 'Zoë "Z" O\'Neil'
    assert parsed[0]["caller"] == rows[0]["caller"]  # E.164 "+..." is not a formula
    assert parsed[0]["listed"] == "true"
    assert parsed[5]["outcome"] == "" and parsed[5]["ended_at"] == ""
    assert float(parsed[0]["talk_seconds"]) == 95.5
    by_id = {r["id"]: r for r in rows}
    for line in parsed:  # the follow-up task of a call that reached nobody is in the export
        assert line["callback_task"] == (by_id[line["id"]]["callback_task"] or "")
    assert any(line["callback_task"] for line in parsed)


def _row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(REQUIRED_KEYS)
    base.update(started_at="2026-11-25T09:00:00+00:00", menu_path=[], events=[], listed=True)
    base.update(fields)
    return base


def test_render_csv_neutralises_formulas() -> None:
    rows = [_row(caller_name='=HYPERLINK("http://x")', caller="+33612345678", category="@x")]
    parsed = next(csv.DictReader(io.StringIO(render_calls(rows, "csv"))))
    assert parsed["caller_name"].startswith("'=")
    assert parsed["category"] == "'@x"
    assert parsed["caller"] == "+33612345678"


async def test_render_table_aligned(filled: tuple[str, list[CallRecord]]) -> None:
    rows = await list_calls(filled[0])
    rows[1]["caller"] = "中文😀" + "\x1b[2J" + "x" * 100  # wide, escape sequence, long
    lines = render_calls(rows, "table").splitlines()
    assert lines[0].split() == ["started", "(UTC)", "caller", "line", "outcome",
                                "answered_by", "wait", "talk"]  # fmt: skip
    assert len(lines) == 2 + len(rows)
    assert "\x1b" not in "".join(lines)
    caller_col = lines[0].index("caller")
    line_col = display_width(lines[0][: lines[0].index("line")])
    for text in lines[2:]:
        # every row's "line" column starts at the same terminal column
        prefix = text[: len(text)]
        widths = [display_width(prefix[:i]) for i in range(len(prefix) + 1)]
        assert line_col in widths
        assert text[caller_col - 2 : caller_col] == "  "
    assert "2026-11-25 09:00:00" in lines[2]
    assert "alice" in lines[2] and "20.0" in lines[2] and "95.5" in lines[2]
    assert "in progress" in lines[2 + 5]
    assert "…" in lines[3]


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(CallLogFormatError, match="table, json, csv"):
        render_calls([], "xml")  # type: ignore[arg-type]
