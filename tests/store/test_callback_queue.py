"""Working the callback queue against a real PostgreSQL: claim order, concurrent claimers,
results, retries, releases and the JSON the CLI prints."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from pbx_service.callbacks import queue
from pbx_service.callbacks.queue import (
    CallbackInputError,
    CallbackTaskClaimedByOther,
    CallbackTaskClosed,
    CallbackTaskNotFound,
    RetryPolicy,
)
from pbx_service.errors import PbxError
from pbx_service.ops import callbacks_report as report
from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.errors import DatabaseUnavailableError
from tests.store.helpers import T0, UNREACHABLE_URL, fetch

pytestmark = pytest.mark.timeout(60)

LIST_KEYS = {
    "id",
    "number",
    "status",
    "due_at",
    "attempts",
    "sources",
    "voicemails",
    "claimed_by",
    "closed_by",
    "closed_at",
    "caller_name",
    "did",
    "line_label",
    "priority",
    "dial_attempts",
    "notes",
}

_INSERT_SQL = """
INSERT INTO callback_tasks (id, number, anonymous, caller_name, did, line_label, status,
    priority, due_at, attempts, sources, voicemails, created_at, updated_at, last_call_at)
VALUES ($1, $2, $3, $4, '+74950000000', 'Sales', 'open', $5, $6, 1, $7, $8, $9, $9, $9)
"""


async def add_task(
    database_url: str,
    number: str | None = None,
    *,
    due: timedelta = timedelta(0),
    priority: int = 0,
    created: timedelta = timedelta(minutes=-60),
    conn: asyncpg.Connection | None = None,
) -> uuid.UUID:
    """An open task, due ``due`` after T0, made ``created`` after T0."""
    task_id = uuid.uuid4()
    args = (
        task_id,
        number,
        number is None,
        f"Caller {number}",
        priority,
        T0 + due,
        ["voicemail"],
        ["voicemail/100/abc"],
        T0 + created,
    )
    if conn is not None:
        await conn.execute(_INSERT_SQL, *args)
        return task_id
    own = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await own.execute(_INSERT_SQL, *args)
    finally:
        await own.close()
    return task_id


async def row(database_url: str, task_id: uuid.UUID) -> Any:
    [found] = await fetch(database_url, "SELECT * FROM callback_tasks WHERE id = $1", task_id)
    return found


# -- claim order -----------------------------------------------------------------------------


async def test_claim_next_takes_priority_then_due_time_then_age(database_url: str) -> None:
    late_low = await add_task(database_url, "+74951000001", due=timedelta(minutes=-5))
    early_low = await add_task(database_url, "+74951000002", due=timedelta(minutes=-30))
    high = await add_task(database_url, "+74951000003", due=timedelta(minutes=-1), priority=5)
    older_same_due = await add_task(
        database_url, "+74951000004", due=timedelta(minutes=-30), created=timedelta(hours=-3)
    )
    not_due = await add_task(database_url, "+74951000005", due=timedelta(minutes=10), priority=9)
    order = []
    while (task := await queue.claim_next(database_url, "101", now=T0)) is not None:
        order.append(task.id)
        assert task.status == "claimed" and task.claimed_by == "101" and task.claimed_at == T0
    assert order == [high, older_same_due, early_low, late_low]
    assert (await row(database_url, not_due))["status"] == "open"
    # Once its time comes, the not-yet-due task is claimable.
    later = await queue.claim_next(database_url, "101", now=T0 + timedelta(minutes=10))
    assert later is not None and later.id == not_due


async def test_claimed_task_carries_what_the_agent_needs(database_url: str) -> None:
    task_id = await add_task(database_url, "+74951234567")
    task = await queue.claim_next(database_url, "anna", now=T0)
    assert task is not None and task.id == task_id
    assert task.number == "+74951234567" and task.sources == ("voicemail",)
    assert task.voicemails == ("voicemail/100/abc",) and task.line_label == "Sales"
    data = task.as_dict()
    assert LIST_KEYS <= set(data) and data["claimed_by"] == "anna"
    [listed] = await queue.list_tasks(database_url)
    assert listed == data
    json.dumps(data)


async def test_claim_next_on_an_empty_queue_is_none(database_url: str) -> None:
    assert await queue.claim_next(database_url, "101", now=T0) is None


# -- concurrency -----------------------------------------------------------------------------


async def add_many(database_url: str, n: int) -> set[uuid.UUID]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            return {
                await add_task(
                    database_url,
                    f"+7495{i:07d}",
                    due=timedelta(seconds=-(i % 7)),
                    priority=i % 3,
                    conn=conn,
                )
                for i in range(n)
            }
    finally:
        await conn.close()


async def test_two_concurrent_claimers_never_take_the_same_task(database_url: str) -> None:
    made = await add_many(database_url, 200)

    async def agent(name: str) -> list[uuid.UUID]:
        taken: list[uuid.UUID] = []
        while (task := await queue.claim_next(database_url, name, now=T0)) is not None:
            taken.append(task.id)
            await asyncio.sleep(0)  # let the other claimer interleave
        return taken

    first, second = await asyncio.gather(agent("101"), agent("102"))
    assert len(first) + len(second) == 200
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == made
    assert first and second, "both claimers should have got work"
    owners = {
        r["id"]: r["claimed_by"]
        for r in await fetch(database_url, "SELECT id, claimed_by FROM callback_tasks")
    }
    assert all(owners[t] == "101" for t in first) and all(owners[t] == "102" for t in second)


_CLAIMER = """
import asyncio, sys
from datetime import datetime
from pbx_service.callbacks import queue

async def main() -> None:
    url, agent, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start claiming together
    while (task := await queue.claim_next(url, agent, now=now)) is not None:
        print(task.id, flush=True)

asyncio.run(main())
"""


async def test_two_processes_claim_every_task_exactly_once(database_url: str) -> None:
    made = await add_many(database_url, 200)
    env = {**os.environ, "PYTHONWARNINGS": "error"}

    async def start(agent: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CLAIMER,
            database_url,
            agent,
            T0.isoformat(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        return proc

    async def claimed(proc: asyncio.subprocess.Process) -> list[uuid.UUID]:
        out, err = await proc.communicate(b"go\n")
        assert proc.returncode == 0, err.decode()
        return [uuid.UUID(line) for line in out.decode().split()]

    procs = await asyncio.gather(start("daemon-a"), start("daemon-b"))
    first, second = await asyncio.gather(*(claimed(p) for p in procs))
    assert len(first) + len(second) == 200
    assert set(first).isdisjoint(second) and set(first) | set(second) == made
    assert first and second, "both processes should have got work"


# -- claim by id ---------------------------------------------------------------------------


async def test_claim_by_id_is_idempotent_and_refuses_other_agents(database_url: str) -> None:
    task_id = await add_task(database_url, "+74951234567", due=timedelta(hours=2))
    task = await queue.claim(database_url, str(task_id), "101", now=T0)
    assert task.status == "claimed" and task.claimed_by == "101"  # not due yet: still claimable
    again = await queue.claim(database_url, task_id, "101", now=T0 + timedelta(minutes=1))
    assert again.claimed_at == T0
    with pytest.raises(CallbackTaskClaimedByOther, match="101"):
        await queue.claim(database_url, task_id, "102", now=T0)
    with pytest.raises(CallbackTaskNotFound):
        await queue.claim(database_url, uuid.uuid4(), "101", now=T0)
    with pytest.raises(CallbackInputError, match="not a callback task id"):
        await queue.claim(database_url, "12; DROP TABLE", "101", now=T0)
    with pytest.raises(CallbackInputError, match="agent"):
        await queue.claim(database_url, task_id, "  ", now=T0)


# -- finishing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "dial_attempts", "reason"),
    [
        ("done", 1, "called back by 101"),
        ("wrong_number", 1, "wrong number, reported by 101"),
        ("cancelled", 0, "cancelled by 101"),
    ],
)
async def test_finish_closes_the_task(
    database_url: str, result: str, dial_attempts: int, reason: str
) -> None:
    task_id = await add_task(database_url, "+74951234567")
    await queue.claim_next(database_url, "101", now=T0)
    at = T0 + timedelta(minutes=3)
    data = await queue.finish(database_url, task_id, "101", result, "spoke to Ivan", now=at)
    assert data["status"] == result and data["closed_by"] == "101"
    assert data["closed_at"] == at.isoformat() and data["notes"] == "spoke to Ivan"
    stored = await row(database_url, task_id)
    assert stored["dial_attempts"] == dial_attempts and stored["close_reason"] == reason
    assert await queue.due_count(database_url, at + timedelta(days=1)) == 0
    with pytest.raises(CallbackTaskClosed, match=result):
        await queue.finish(database_url, task_id, "101", "done", now=at)


async def test_finish_an_unclaimed_task_and_a_task_held_by_another(database_url: str) -> None:
    free = await add_task(database_url, "+74951000001")
    data = await queue.finish(database_url, free, "101", "done", now=T0)
    assert data["status"] == "done"  # an agent may call back straight from the list
    held = await add_task(database_url, "+74951000002")
    await queue.claim(database_url, held, "102", now=T0)
    with pytest.raises(CallbackTaskClaimedByOther, match="102"):
        await queue.finish(database_url, held, "101", "done", now=T0)
    data = await queue.finish(database_url, held, "sup", "cancelled", now=T0, force=True)
    assert data["status"] == "cancelled" and data["closed_by"] == "sup"
    with pytest.raises(CallbackInputError, match="not one of"):
        await queue.finish(database_url, free, "101", "answered", now=T0)


async def test_no_answer_backs_off_then_closes_at_max_attempts(database_url: str) -> None:
    task_id = await add_task(database_url, "+74951234567")
    policy = RetryPolicy(backoff=(timedelta(minutes=15), timedelta(hours=1)), max_dial_attempts=4)
    at = T0
    expected_delays = [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=1)]
    for attempt, delay in enumerate(expected_delays, start=1):
        task = await queue.claim_next(database_url, "101", now=at)
        assert task is not None and task.id == task_id
        data = await queue.finish(
            database_url, task_id, "101", "no_answer", f"try {attempt}", now=at, policy=policy
        )
        assert data["status"] == "open" and data["dial_attempts"] == attempt
        assert data["claimed_by"] is None and data["closed_at"] is None
        assert data["due_at"] == (at + delay).isoformat()
        # Not due during the backoff; due again after it.
        assert await queue.claim_next(database_url, "101", now=at + delay / 2) is None
        assert await queue.due_count(database_url, at + delay) == 1
        at += delay
    await queue.claim_next(database_url, "101", now=at)
    data = await queue.finish(
        database_url, task_id, "101", "no_answer", "try 4", now=at, policy=policy
    )
    assert data["status"] == "no_answer" and data["dial_attempts"] == 4
    assert data["closed_by"] == "101" and data["closed_at"] == at.isoformat()
    assert data["notes"] == "try 1\ntry 2\ntry 3\ntry 4"
    assert (await row(database_url, task_id))["close_reason"] == "no answer after 4 dial attempts"
    assert await queue.due_count(database_url, at + timedelta(days=30)) == 0


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(CallbackInputError):
        RetryPolicy(backoff=())
    with pytest.raises(CallbackInputError):
        RetryPolicy(backoff=(timedelta(0),))
    with pytest.raises(CallbackInputError):
        RetryPolicy(max_dial_attempts=0)
    assert RetryPolicy().delay_after(1) == timedelta(minutes=15)
    assert RetryPolicy().delay_after(9) == timedelta(hours=4)


# -- releasing -----------------------------------------------------------------------------


async def test_release_returns_the_task_to_its_place(database_url: str) -> None:
    first = await add_task(database_url, "+74951000001", due=timedelta(minutes=-20))
    second = await add_task(database_url, "+74951000002", due=timedelta(minutes=-10))
    task = await queue.claim_next(database_url, "101", now=T0)
    assert task is not None and task.id == first
    assert not await queue.release(database_url, first, "102", now=T0)  # not 102's claim
    assert await queue.release(database_url, first, "101", now=T0)
    assert not await queue.release(database_url, first, now=T0)  # already back
    stored = await row(database_url, first)
    assert stored["status"] == "open" and stored["claimed_by"] is None
    assert stored["due_at"] == T0 - timedelta(minutes=20)
    again = await queue.claim_next(database_url, "102", now=T0)
    assert again is not None and again.id == first  # still first in line, nothing lost
    assert (await row(database_url, second))["status"] == "open"
    with pytest.raises(CallbackTaskNotFound):
        await queue.release(database_url, uuid.uuid4())


async def test_release_stale_frees_only_old_claims(database_url: str) -> None:
    old = await add_task(database_url, "+74951000001")
    fresh = await add_task(database_url, "+74951000002")
    done = await add_task(database_url, "+74951000003")
    await queue.claim(database_url, old, "101", now=T0)
    await queue.claim(database_url, fresh, "102", now=T0 + timedelta(minutes=25))
    await queue.claim(database_url, done, "103", now=T0)
    await queue.finish(database_url, done, "103", "done", now=T0 + timedelta(minutes=1))
    released = await queue.release_stale(
        database_url, timedelta(minutes=20), now=T0 + timedelta(minutes=30)
    )
    assert released == [old]
    assert (await row(database_url, old))["status"] == "open"
    assert (await row(database_url, fresh))["claimed_by"] == "102"
    assert (await row(database_url, done))["status"] == "done"
    with pytest.raises(CallbackInputError):
        await queue.release_stale(database_url, timedelta(0))


# -- listing and counting ------------------------------------------------------------------


async def test_list_tasks_is_json_ready_and_filters_by_status(database_url: str) -> None:
    a = await add_task(database_url, "+74951000001", due=timedelta(minutes=-1))
    b = await add_task(database_url, "+74951000002", priority=3)
    anon = await add_task(database_url, None, due=timedelta(minutes=-2))
    await queue.finish(database_url, a, "101", "done", now=T0)
    everything = await queue.list_tasks(database_url)
    assert [t["id"] for t in everything] == [str(b), str(anon), str(a)]  # active first
    for item in everything:
        assert LIST_KEYS <= set(item)
        json.loads(json.dumps(item))
    assert everything[1]["number"] is None and everything[1]["anonymous"] is True
    assert [t["id"] for t in await queue.list_tasks(database_url, status="done")] == [str(a)]
    assert len(await queue.list_tasks(database_url, status=["open", "done"])) == 3
    assert len(await queue.list_tasks(database_url, limit=1)) == 1
    with pytest.raises(CallbackInputError, match="not one of"):
        await queue.list_tasks(database_url, status="pending")


async def test_due_count_counts_open_due_tasks_only(database_url: str) -> None:
    assert await queue.due_count(database_url, T0) == 0
    await add_task(database_url, "+74951000001", due=timedelta(minutes=-1))
    await add_task(database_url, "+74951000002", due=timedelta(0))
    await add_task(database_url, "+74951000003", due=timedelta(minutes=5))
    assert await queue.due_count(database_url, T0) == 2
    await queue.claim_next(database_url, "101", now=T0)
    assert await queue.due_count(database_url, T0) == 1  # claimed: someone is on it
    assert await queue.due_count(database_url, T0 + timedelta(minutes=5)) == 2
    assert queue.device_state_for(1) == "BUSY" and queue.device_state_for(0) == "NOT_INUSE"


async def test_close_for_number_closes_the_open_task(database_url: str) -> None:
    task_id = await add_task(database_url, "+74951234567")
    assert (
        await queue.close_for_number(
            database_url, "+70000000000", "101", "called back from 101", now=T0
        )
        is None
    )
    closed = await queue.close_for_number(
        database_url, "+74951234567", "101", "called back from 101", now=T0
    )
    assert closed == task_id
    stored = await row(database_url, task_id)
    assert stored["status"] == "done" and stored["closed_by"] == "101"
    assert stored["close_reason"] == "called back from 101" and stored["dial_attempts"] == 1


async def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailableError, match="cannot reach"):
        await queue.due_count(UNREACHABLE_URL, T0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(CallbackInputError, match="timezone"):
        asyncio.run(queue.due_count(UNREACHABLE_URL, datetime(2026, 1, 1)))


# -- CLI subcommands (pbx_service.ops.callbacks_report) ------------------------------------


async def test_cli_list_renders_table_json_and_csv(database_url: str) -> None:
    await add_task(database_url, "+74951000001", priority=2)
    closed = await add_task(database_url, '=HYPERLINK("x")')
    await queue.finish(database_url, closed, "101", "cancelled", now=T0)
    text, code = await report.cli_list(database_url, "table")
    assert code == 0 and "+74951000001" in text and "HYPERLINK" not in text  # active only
    assert text.splitlines()[0].split()[:3] == ["id", "due", "(UTC)"]
    text, _ = await report.cli_list(database_url, "json", status="all")
    data = json.loads(text)
    assert [t["status"] for t in data] == ["open", "cancelled"] and LIST_KEYS <= set(data[0])
    text, _ = await report.cli_list(database_url, "csv", status="cancelled")
    header, row_line = text.splitlines()
    text, _ = await report.cli_list(database_url, "csv")
    assert text.splitlines()[1].split(",")[1] == "+74951000001"  # a number is not a formula
    assert header.split(",")[:2] == ["id", "number"]
    assert row_line.split(",")[1].startswith("\"'=HYPERLINK")  # a formula is defused
    text, _ = await report.cli_list(database_url, "table", status="done")
    assert "(no callback tasks)" in text


async def test_cli_claim_and_done_work_a_task_end_to_end(database_url: str) -> None:
    text, code = await report.cli_claim(database_url, "101", now=T0)
    assert code == report.EXIT_NOTHING_DUE and "no callback is due" in text
    task_id = await add_task(database_url, "+74951000001")
    text, code = await report.cli_claim(database_url, "101", now=T0)
    assert code == 0 and f"id             {task_id}" in text and "claimed_by     101" in text
    text, code = await report.cli_done(
        database_url, str(task_id), "101", "no_answer", "line busy", "json", now=T0
    )
    data = json.loads(text)
    assert code == 0 and data["status"] == "open" and data["dial_attempts"] == 1
    text, code = await report.cli_claim(
        database_url, "102", str(task_id), fmt="json", now=T0 + timedelta(minutes=1)
    )
    assert json.loads(text)["claimed_by"] == "102"  # by id, even before its retry is due
    text, code = await report.cli_release(database_url, str(task_id), "102")
    assert code == 0 and "back in the queue" in text
    text, _ = await report.cli_done(database_url, str(task_id), "101", "done", "ok\nthanks")
    assert "status         done" in text and "line busy\n" in text
    with pytest.raises(CallbackTaskClosed):
        await report.cli_done(database_url, str(task_id), "101", "done")


def test_render_tasks_keeps_the_terminal_safe() -> None:
    row = {
        "id": "t1",
        "number": "+7495\u202e1000001",  # right-to-left override
        "caller_name": "Evil\x1b[2J",
        "status": "open",
        "sources": ["voicemail"],
    }
    text = report.render_tasks([row], "table")
    assert "\u202e" not in text and "\x1b" not in text and "Evil?[2J" in text
    with pytest.raises(PbxError, match="unknown format"):
        report.render_tasks([row], "xml")  # type: ignore[arg-type]
