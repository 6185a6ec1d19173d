"""Call-log output for the CLI: a terminal table, JSON or CSV from `store.queries.list_calls`.

Caller numbers and names are text from outside (SIP headers): the table replaces control and
bidi characters so they cannot move the cursor or reorder the screen, and CSV cells that a
spreadsheet would run as formulas get a leading quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import orjson

from pbx_service.errors import PbxError
from pbx_service.ops.text import csv_document, csv_text, fit, safe, table

Format = Literal["table", "json", "csv"]
FORMATS: tuple[str, ...] = ("table", "json", "csv")

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "caller",
    "caller_name",
    "did",
    "line_label",
    "listed",
    "outcome",
    "answered_by",
    "wait_seconds",
    "talk_seconds",
    "recording",
    "voicemail",
    "category",
    "menu_path",
    "callback_task",
    "callback_due",
    "events",
)
_TABLE_HEADERS = ("started (UTC)", "caller", "line", "outcome", "answered_by", "wait", "talk")
_NUMERIC = frozenset({"wait", "talk"})
_MAX_CELL = 28


class CallLogFormatError(PbxError):
    """An output format we do not have."""

    error_id = "ops-bad-format"


def render_calls(rows: Sequence[dict[str, Any]], fmt: Format) -> str:
    """Render ``rows`` (dicts from `list_calls`) as ``table``, ``json`` or ``csv`` text."""
    if fmt == "json":
        return orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
    if fmt == "csv":
        return _csv(rows)
    if fmt == "table":
        return _table(rows)
    raise CallLogFormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _csv_cell(key: str, value: Any) -> str:
    if key == "events":
        return str(len(value or []))
    if key == "menu_path" and value is not None:
        value = ">".join(str(v) for v in value)
    return csv_text(value)


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    return csv_document(CSV_COLUMNS, rows, _csv_cell)


def _started(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [
        (
            _started(row.get("started_at")),
            fit(safe(row.get("caller") or "-"), _MAX_CELL),
            fit(safe(row.get("line_label") or row.get("did") or "-"), _MAX_CELL),
            safe(row.get("outcome") or ("in progress" if not row.get("ended_at") else "-")),
            fit(safe(row.get("answered_by") or "-"), _MAX_CELL),
            _seconds(row.get("wait_seconds")),
            _seconds(row.get("talk_seconds")),
        )
        for row in rows
    ]
    return table(_TABLE_HEADERS, cells, numeric=_NUMERIC, empty="(no calls)")
