"""Call-log output for the CLI: a terminal table, JSON or CSV from `store.queries.list_calls`.

Caller numbers and names are text from outside (SIP headers): the table replaces control and
bidi characters so they cannot move the cursor or reorder the screen, and CSV cells that a
spreadsheet would run as formulas get a leading quote.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import orjson

from pbx_service.errors import PbxError

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
    if value is None:
        return ""
    if key == "menu_path":
        value = ">".join(str(v) for v in value)
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, float):
        return repr(value)
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    # "+33612345678" and "-1.5" are data, not formulas.
    body = text[1:] if text[:1] in "+-" else text
    return bool(body) and body.replace(".", "", 1).isdigit()


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(k, row.get(k)) for k in CSV_COLUMNS])
    return out.getvalue()


def _safe(text: str) -> str:
    """Printable text for a terminal: control, format (bidi) and separator characters become '?'."""
    return "".join("?" if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian and emoji count 2)."""
    return sum(_char_width(ch) for ch in text)


def _fit(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


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
            _fit(_safe(row.get("caller") or "-"), _MAX_CELL),
            _fit(_safe(row.get("line_label") or row.get("did") or "-"), _MAX_CELL),
            _safe(row.get("outcome") or ("in progress" if not row.get("ended_at") else "-")),
            _fit(_safe(row.get("answered_by") or "-"), _MAX_CELL),
            _seconds(row.get("wait_seconds")),
            _seconds(row.get("talk_seconds")),
        )
        for row in rows
    ]
    widths = [
        max([display_width(h), *(display_width(c[i]) for c in cells)])
        for i, h in enumerate(_TABLE_HEADERS)
    ]

    def line(values: Sequence[str]) -> str:
        parts = []
        for header, value, width in zip(_TABLE_HEADERS, values, widths, strict=True):
            pad = " " * (width - display_width(value))
            parts.append(pad + value if header in _NUMERIC else value + pad)
        return "  ".join(parts).rstrip()

    lines = [line(_TABLE_HEADERS), line(["-" * w for w in widths])]
    lines.extend(line(c) for c in cells)
    if not cells:
        lines.append("(no calls)")
    return "\n".join(lines) + "\n"
