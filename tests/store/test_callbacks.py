"""Callback tasks made by the call-log writer: one open task per number, idempotent replays,
auto-close when the customer reaches a person."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pbx_service.store.queries import call_summary, list_calls
from pbx_service.store.records import CallRecord, Outcome
from pbx_service.store.writer import CallLogWriter
from tests.store.helpers import T0, fetch, make_call

NUMBER = "+74951234567"


def ended(n: int, outcome: Outcome, **fields: Any) -> CallRecord:
    call = make_call(n, caller_number=fields.pop("caller_number", NUMBER), **fields)
    call.ended_at = call.started_at + timedelta(seconds=30)
    call.outcome = outcome
    call.callback_due = call.ended_at + timedelta(minutes=30)
    if outcome is Outcome.ANSWERED:
        call.answered_at = call.started_at + timedelta(seconds=5)
        call.answered_by = "PJSIP/101"
    return call


async def write(database_url: str, tmp_path: Path, *calls: CallRecord) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=0.01)
    await writer.start()
    for call in calls:
        writer.submit(call)
    await writer.close()


async def tasks(database_url: str) -> list[Any]:
    return await fetch(database_url, "SELECT * FROM callback_tasks ORDER BY created_at")


async def test_voicemail_makes_a_task_due_after_the_sla(database_url: str, tmp_path: Path) -> None:
    call = ended(0, Outcome.VOICEMAIL, voicemail="voicemail/100/abc")
    await write(database_url, tmp_path, call)
    [task] = await tasks(database_url)
    assert task["number"] == NUMBER and task["status"] == "open" and not task["anonymous"]
    assert task["sources"] == ["voicemail"] and task["voicemails"] == ["voicemail/100/abc"]
    assert task["attempts"] == 1 and task["due_at"] == call.callback_due
    [row] = await list_calls(database_url)
    assert row["callback_task"] == str(task["id"])
    assert (await call_summary(database_url))["lost"] == 0


async def test_repeat_calls_join_the_one_open_task(database_url: str, tmp_path: Path) -> None:
    first = ended(0, Outcome.ABANDONED)
    second = ended(5, Outcome.VOICEMAIL, voicemail="voicemail/100/v2")
    third = ended(9, Outcome.ABANDONED)
    await write(database_url, tmp_path, first)
    await write(database_url, tmp_path, second, third)
    [task] = await tasks(database_url)
    assert task["attempts"] == 3
    assert task["sources"] == ["abandoned", "voicemail"]
    assert task["voicemails"] == ["voicemail/100/v2"]
    assert task["due_at"] == first.callback_due  # the earliest promise stands


async def test_replaying_the_same_call_changes_nothing(database_url: str, tmp_path: Path) -> None:
    call = ended(0, Outcome.VOICEMAIL, voicemail="voicemail/100/x")
    await write(database_url, tmp_path, call)
    await write(database_url, tmp_path, call)  # e.g. a spool replayed after a crash
    [task] = await tasks(database_url)
    assert task["attempts"] == 1 and task["voicemails"] == ["voicemail/100/x"]


async def test_anonymous_callers_get_a_task_each(database_url: str, tmp_path: Path) -> None:
    a = ended(0, Outcome.VOICEMAIL, caller_number=None, voicemail="voicemail/100/a")
    b = ended(1, Outcome.ABANDONED, caller_number=None)
    await write(database_url, tmp_path, a, b)
    found = await tasks(database_url)
    assert len(found) == 2 and all(t["anonymous"] and t["number"] is None for t in found)
    assert (await call_summary(database_url))["lost"] == 0


async def test_reaching_a_person_closes_the_task(database_url: str, tmp_path: Path) -> None:
    await write(database_url, tmp_path, ended(0, Outcome.ABANDONED))
    await write(database_url, tmp_path, ended(10, Outcome.ANSWERED))
    [task] = await tasks(database_url)
    assert task["status"] == "done" and task["closed_by"] == "PJSIP/101"
    assert task["closed_at"] == T0 + timedelta(minutes=10, seconds=5)
    # A new unanswered call after that opens a new task.
    await write(database_url, tmp_path, ended(20, Outcome.ABANDONED))
    assert [t["status"] for t in await tasks(database_url)] == ["done", "open"]


async def test_an_in_progress_call_makes_no_task(database_url: str, tmp_path: Path) -> None:
    await write(database_url, tmp_path, make_call(0, caller_number=NUMBER))
    assert await tasks(database_url) == []
