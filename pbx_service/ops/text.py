"""Text for terminals and spreadsheets from data that came from outside (caller names and
numbers): control and bidi characters never reach a terminal, and a CSV cell a spreadsheet
would run as a formula gets a leading quote."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any


def safe(text: str) -> str:
    """Printable text for a terminal: control, format (bidi) and separator characters become '?'."""
    return "".join("?" if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian and emoji count 2)."""
    return sum(_char_width(ch) for ch in text)


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, ending in '…' when cut."""
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


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: frozenset[str] = frozenset(),
    empty: str = "(none)",
) -> str:
    """Aligned columns; ``numeric`` headers are right-aligned."""
    widths = [
        max([display_width(h), *(display_width(r[i]) for r in rows)]) for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        parts = []
        for header, value, width in zip(headers, values, widths, strict=True):
            pad = " " * (width - display_width(value))
            parts.append(pad + value if header in numeric else value + pad)
        return "  ".join(parts).rstrip()

    lines = [line(headers), line(["-" * w for w in widths])]
    lines.extend(line(r) for r in rows)
    if not rows:
        lines.append(empty)
    return "\n".join(lines) + "\n"


def _is_number(text: str) -> bool:
    # "+74951234567" and "-1.5" are data, not formulas.
    body = text[1:] if text[:1] in "+-" else text
    return bool(body) and body.replace(".", "", 1).isdigit()


def csv_text(value: Any) -> str:
    """One CSV cell: booleans as true/false, no formula a spreadsheet would run."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def csv_document(
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    cell: Callable[[str, Any], str],
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(k, row.get(k)) for k in columns])
    return out.getvalue()
