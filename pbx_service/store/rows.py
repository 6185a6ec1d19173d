"""Immutable snapshots of `CallRecord`s, taken at submit time (the call flow keeps mutating its
record), in the column order of the ``calls`` table; and their JSON form for the disk spool.

Text is made safe for PostgreSQL here: NUL characters are removed (``text`` and ``jsonb``
reject them) and lone surrogates, which cannot be encoded as UTF-8, become U+FFFD.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

from pbx_service.store.records import CallEventRecord, CallRecord

CALL_COLUMNS: tuple[str, ...] = (
    "id",
    "channel_id",
    "linkedid",
    "node",
    "started_at",
    "answered_at",
    "ended_at",
    "caller_number",
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
    "callback_due",
    "updated_at",
)
EVENT_COLUMNS: tuple[str, ...] = ("call_id", "seq", "at", "kind", "detail")
_TIME_COLUMNS = frozenset({"started_at", "answered_at", "ended_at", "callback_due", "updated_at"})

EventRow = tuple[uuid.UUID, int, datetime, str, str]


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """One version of one call: a ``calls`` row and its events, ready for asyncpg."""

    row: tuple[Any, ...]
    events: tuple[EventRow, ...]

    @property
    def call_id(self) -> uuid.UUID:
        result: uuid.UUID = self.row[0]
        return result

    @property
    def updated_at(self) -> datetime:
        result: datetime = self.row[-1]
        return result


def clean_text(value: str) -> str:
    """``value`` without NUL characters and with lone surrogates replaced."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Through UTF-16: a split surrogate pair joins up, a lone one becomes U+FFFD.
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _opt_text(value: object) -> str | None:
    if value is None:
        return None
    return clean_text(value.value if isinstance(value, Enum) else str(value))


def utc(value: datetime) -> datetime:
    """Timezone-aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean_json(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def detail_json(detail: dict[str, Any]) -> str:
    """An event's detail as JSON text for ``jsonb`` (unknown types become their str())."""
    try:
        data = orjson.dumps(detail, default=_json_default, option=_JSON_OPTIONS)
    except TypeError:  # orjson refuses lone surrogates: clean, then dump
        data = b"\\u0000"
    if b"\\u0000" in data:  # NUL (jsonb rejects it) or a rare literal lookalike: clean
        data = orjson.dumps(_clean_json(detail), default=_json_default, option=_JSON_OPTIONS)
    return data.decode("utf-8")


def event_row(call_id: uuid.UUID, event: CallEventRecord) -> EventRow:
    """One ``call_events`` row."""
    return (
        call_id,
        int(event.seq),
        utc(event.at),
        clean_text(str(event.kind)),
        detail_json(event.detail),
    )


def snapshot(
    record: CallRecord, updated_at: datetime, known_events: Sequence[EventRow] = ()
) -> CallSnapshot:
    """Copy ``record`` into an immutable `CallSnapshot` stamped ``updated_at``.

    ``known_events`` are rows already made from this call's first events (events are
    append-only): those whose seq and kind still match are reused instead of serialised again.
    """
    call_id = record.id if isinstance(record.id, uuid.UUID) else uuid.UUID(str(record.id))
    row = (
        call_id,
        clean_text(str(record.channel_id)),
        _opt_text(record.linkedid),
        _opt_text(record.node),
        utc(record.started_at),
        _opt_utc(record.answered_at),
        _opt_utc(record.ended_at),
        _opt_text(record.caller_number),
        _opt_text(record.caller_name),
        clean_text(str(record.did)),
        _opt_text(record.line_label),
        bool(record.listed),
        _opt_text(record.outcome),
        _opt_text(record.answered_by),
        _opt_float(record.wait_seconds),
        _opt_float(record.talk_seconds),
        _opt_text(record.recording),
        _opt_text(record.voicemail),
        _opt_text(record.category),
        [clean_text(str(step)) for step in record.menu_path],
        _opt_utc(record.callback_due),
        utc(updated_at),
    )
    events: list[EventRow] = []
    for i, ev in enumerate(record.events):
        if i < len(known_events):
            known = known_events[i]
            if known[0] == call_id and known[1] == ev.seq and known[3] == ev.kind:
                events.append(known)
                continue
        events.append(event_row(call_id, ev))
    return CallSnapshot(row=row, events=tuple(events))


def to_json(snap: CallSnapshot) -> bytes:
    """One spool line (without the newline)."""
    return orjson.dumps(
        {
            "row": dict(zip(CALL_COLUMNS, snap.row, strict=True)),
            "events": [[seq, at, kind, detail] for _, seq, at, kind, detail in snap.events],
        }
    )


def from_json(line: bytes) -> CallSnapshot:
    """Inverse of `to_json`. Raises ValueError/KeyError/TypeError on a damaged line."""
    data = orjson.loads(line)
    raw = data["row"]
    values: list[Any] = []
    for column in CALL_COLUMNS:
        value = raw[column]
        if column == "id":
            value = uuid.UUID(value)
        elif column in _TIME_COLUMNS and value is not None:
            value = datetime.fromisoformat(value)
        values.append(value)
    call_id: uuid.UUID = values[0]
    events = tuple(
        (call_id, int(seq), datetime.fromisoformat(at), str(kind), str(detail))
        for seq, at, kind, detail in data["events"]
    )
    return CallSnapshot(row=tuple(values), events=events)


def merge(older: CallSnapshot | None, newer: CallSnapshot) -> CallSnapshot:
    """The newer version of the row with the union of both versions' events (by seq)."""
    if older is None or not older.events:
        return newer
    if len(newer.events) >= len(older.events) and all(
        a[1] == b[1] for a, b in zip(older.events, newer.events, strict=False)
    ):
        return newer
    by_seq = {ev[1]: ev for ev in older.events}
    by_seq.update((ev[1], ev) for ev in newer.events)
    return CallSnapshot(row=newer.row, events=tuple(by_seq[s] for s in sorted(by_seq)))
