"""Callback-queue output for ``pbx-service callbacks list|claim|done|release``.

`render_tasks` turns `callbacks.queue.list_tasks` dicts into a terminal table, JSON or CSV.
The ``cli_*`` coroutines are the subcommands minus argparse: they take parsed values and return
``(text to print, exit code)``; errors are raised as `PbxError` subclasses for the CLI's one
handler (bad input: `CallbackInputError`; a task another agent holds:
`CallbackTaskClaimedByOther`; database down: `DatabaseUnavailableError`).

Exit codes: 0 done, `EXIT_NOTHING_DUE` (3) when ``claim`` found no due task, so a script can
loop ``while pbx-service callbacks claim --agent 101; do ...; done``.

Caller numbers and names are text from outside: the table replaces control and bidi characters,
and CSV cells a spreadsheet would run as formulas get a leading quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import orjson

from pbx_service.callbacks import queue
from pbx_service.ops.calllog import FORMATS, CallLogFormatError, Format
from pbx_service.ops.text import csv_document, csv_text, fit, safe, table

EXIT_OK: Final = 0
EXIT_NOTHING_DUE: Final = 3

STATUS_ALL: Final = "all"
"""``--status all``: every task; the default lists the active ones (open and claimed)."""

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "number",
    "caller_name",
    "anonymous",
    "did",
    "line_label",
    "status",
    "priority",
    "due_at",
    "attempts",
    "dial_attempts",
    "sources",
    "voicemails",
    "claimed_by",
    "claimed_at",
    "closed_by",
    "closed_at",
    "close_reason",
    "notes",
    "created_at",
    "last_call_at",
)
_TABLE_HEADERS: Final = (
    "id",
    "due (UTC)",
    "number",
    "caller",
    "line",
    "status",
    "prio",
    "calls",
    "dials",
    "sources",
    "agent",
)
_NUMERIC: Final = frozenset({"prio", "calls", "dials"})
_MAX_CELL: Final = 24
_DETAIL_KEYS: Final = (
    "id",
    "number",
    "caller_name",
    "line_label",
    "did",
    "status",
    "priority",
    "due_at",
    "attempts",
    "dial_attempts",
    "sources",
    "voicemails",
    "claimed_by",
    "closed_by",
    "closed_at",
    "close_reason",
    "notes",
)


def render_tasks(rows: Sequence[dict[str, Any]], fmt: Format) -> str:
    """Render ``rows`` (dicts from `list_tasks`) as ``table``, ``json`` or ``csv`` text."""
    if fmt == "json":
        return orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
    if fmt == "csv":
        return _csv(rows)
    if fmt == "table":
        return _table(rows)
    raise CallLogFormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def render_task(row: dict[str, Any], fmt: Format) -> str:
    """One task: ``key: value`` lines for a terminal, else as `render_tasks` renders a list of
    one (JSON: the object itself, not a list)."""
    if fmt == "json":
        return orjson.dumps(row, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
    if fmt == "csv":
        return _csv([row])
    if fmt != "table":
        raise CallLogFormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    width = max(len(k) for k in _DETAIL_KEYS)
    lines = []
    for key in _DETAIL_KEYS:
        value = row.get(key)
        if value is None or value == []:
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        text = str(value)
        if key != "notes":
            text = safe(text)
        else:  # several lines: keep the breaks, indent the continuation
            text = ("\n" + " " * (width + 2)).join(safe(part) for part in text.split("\n"))
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines) + "\n"


# -- subcommands ---------------------------------------------------------------------------


async def cli_list(
    database_url: str, fmt: Format = "table", status: str | None = None, limit: int | None = None
) -> tuple[str, int]:
    """``callbacks list [--status open|claimed|done|...|all] [--format ...]``.

    Without ``status``: the active tasks (open and claimed), in claim order.
    """
    wanted: str | tuple[str, ...] | None
    if status is None:
        wanted = queue.ACTIVE_STATUSES
    elif status == STATUS_ALL:
        wanted = None
    else:
        wanted = status
    rows = await queue.list_tasks(database_url, status=wanted, limit=limit)
    return render_tasks(rows, fmt), EXIT_OK


async def cli_claim(
    database_url: str,
    agent: str,
    task_id: str | None = None,
    fmt: Format = "table",
    *,
    now: datetime | None = None,
) -> tuple[str, int]:
    """``callbacks claim --agent 101 [TASK_ID]``: the most urgent due task, or that one.

    Nothing due: a message and `EXIT_NOTHING_DUE`.
    """
    if task_id is None:
        task = await queue.claim_next(database_url, agent, now=now)
        if task is None:
            return "no callback is due\n", EXIT_NOTHING_DUE
    else:
        task = await queue.claim(database_url, task_id, agent, now=now)
    return render_task(task.as_dict(), fmt), EXIT_OK


async def cli_done(
    database_url: str,
    task_id: str,
    agent: str,
    result: str = "done",
    notes: str | None = None,
    fmt: Format = "table",
    *,
    force: bool = False,
    policy: queue.RetryPolicy = queue.DEFAULT_RETRY_POLICY,
    now: datetime | None = None,
) -> tuple[str, int]:
    """``callbacks done TASK_ID --agent 101 [--result done|no_answer|wrong_number|cancelled]
    [--notes TEXT] [--force]``: record the result; prints the task as it is now (after a
    ``no_answer`` below the maximum: open again, with its new due time)."""
    row = await queue.finish(
        database_url, task_id, agent, result, notes, now=now, policy=policy, force=force
    )
    return render_task(row, fmt), EXIT_OK


async def cli_release(
    database_url: str, task_id: str, agent: str | None = None, *, now: datetime | None = None
) -> tuple[str, int]:
    """``callbacks release TASK_ID [--agent 101]``: give a claimed task back to the queue."""
    released = await queue.release(database_url, task_id, agent, now=now)
    if released:
        return f"callback task {task_id} is back in the queue\n", EXIT_OK
    return f"callback task {task_id} was not claimed{' by ' + agent if agent else ''}\n", EXIT_OK


# -- formatting ----------------------------------------------------------------------------


def _csv_cell(key: str, value: Any) -> str:
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    return csv_text(value)


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    return csv_document(CSV_COLUMNS, rows, _csv_cell)


def _due(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [
        (
            str(row.get("id", "-")),
            _due(row.get("due_at")),
            fit(safe(row.get("number") or "anonymous"), _MAX_CELL),
            fit(safe(row.get("caller_name") or "-"), _MAX_CELL),
            fit(safe(row.get("line_label") or row.get("did") or "-"), _MAX_CELL),
            safe(str(row.get("status") or "-")),
            str(row.get("priority", 0)),
            str(row.get("attempts", 0)),
            str(row.get("dial_attempts", 0)),
            fit(safe(",".join(row.get("sources") or []) or "-"), _MAX_CELL),
            fit(safe(row.get("claimed_by") or row.get("closed_by") or "-"), _MAX_CELL),
        )
        for row in rows
    ]
    return table(_TABLE_HEADERS, cells, numeric=_NUMERIC, empty="(no callback tasks)")
