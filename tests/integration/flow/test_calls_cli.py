"""`pbx-service calls` reads the log the daemon wrote, in each format."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys

from pbx_service.simulator.driver import AgentBehaviour, Hangup, WaitBridged
from tests.fixtures.pbx import Pbx

REQUIRED = {
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "caller",
    "did",
    "line_label",
    "outcome",
    "answered_by",
    "wait_seconds",
    "talk_seconds",
    "recording",
    "voicemail",
    "events",
}


async def cli(pbx: Pbx, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": pbx.database_url}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pbx_service.cli", "calls", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_calls_json_csv_table(pbx: Pbx) -> None:
    agent = pbx.agent("d101", AgentBehaviour.answers(after=0.2))
    await pbx.start_daemon(pbx.config(reception=[agent]))
    call = await pbx.driver.place_call(
        "84951110000",
        "+74951234567",
        caller_name='ООО "Ромашка"',
        steps=[WaitBridged(15), Hangup()],
    )
    await asyncio.wait_for(call.ended, 20)
    await pbx.wait_ended(1)

    [obj] = json.loads(await cli(pbx, "--format", "json"))
    assert REQUIRED <= set(obj)
    assert obj["line_label"] == "old sales line" and obj["outcome"] == "answered"
    assert obj["answered_by"] == agent
    assert obj["events"][0]["kind"] == "incoming"

    rows = list(csv.DictReader(io.StringIO(await cli(pbx, "--format", "csv"))))
    assert len(rows) == 1 and rows[0]["caller_name"] == 'ООО "Ромашка"'

    table = await cli(pbx, "--since", "1h")
    assert "old sales line" in table and "answered" in table
    assert json.loads(await cli(pbx, "--format", "json", "--since", "2999-01-01")) == []


async def test_callbacks_list_shows_the_task_of_an_abandoned_call(pbx: Pbx) -> None:
    agent = pbx.agent("d201", AgentBehaviour.never_answers())
    await pbx.start_daemon(pbx.config(reception=[agent], ring_timeout=10))
    call = await pbx.driver.place_call("84952223344", "8 (916) 555-00-11", steps=[])
    await pbx.driver.wait_leg("d201")
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "abandoned" and row["callback_task"]

    env = {**os.environ, "DATABASE_URL": pbx.database_url}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pbx_service.cli", "callbacks", "list", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [task] = json.loads(proc.stdout)
    keys = {
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
    }
    assert keys <= set(task)
    assert task["id"] == row["callback_task"] and task["number"] == "+79165550011"
    assert task["status"] == "open" and task["sources"] == ["abandoned"]
