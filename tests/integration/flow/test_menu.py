"""The IVR through the daemon: every path of a menu, wrong keys, silence, barge-in, hang-ups,
with the caller's category and path in the call log."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbx_service.simulator.driver import (
    AgentBehaviour,
    Hangup,
    Press,
    Wait,
    WaitBridged,
    WaitPlayback,
)
from tests.fixtures.pbx import Pbx, needs_simulator

WEBSITE = "84952223344"


def menu(**main: Any) -> dict[str, Any]:
    options = {
        "1": {"team": "sales", "category": "customer"},
        "2": {"team": "hr", "category": "job_applicant"},
        "3": {"menu": "partners", "category": "partner"},
        "8": {"voicemail": "general", "category": "other"},
        "0": {"operator": True},
    }
    return {
        "start": "main",
        "menus": {
            "main": {
                "prompt": "main-menu",
                "timeout": 1.0,
                "max_retries": 2,
                "options": options,
                **main,
            },
            "partners": {
                "prompt": "main-menu",
                "timeout": 1.0,
                "options": {"1": {"team": "sales"}, "*": {"back": True}},
            },
        },
    }


async def start(pbx: Pbx, **main: Any) -> dict[str, str]:
    agents = {
        "sales": pbx.agent("s101", AgentBehaviour.answers(after=0.2)),
        "hr": pbx.agent("h101", AgentBehaviour.answers(after=0.2)),
        "reception": pbx.agent("r101", AgentBehaviour.answers(after=0.2)),
    }
    teams = {
        "sales": {"members": [agents["sales"]], "ring_timeout": 3},
        "hr": {"members": [agents["hr"]], "ring_timeout": 3},
    }
    config = pbx.config(reception=[agents["reception"]], teams=teams, ivr=menu(**main))
    await pbx.start_daemon(config)
    return agents


async def test_each_option_reaches_its_team_with_its_category(pbx: Pbx) -> None:
    agents = await start(pbx)
    for n, (keys, team, category, path) in enumerate(
        [
            ("1", "sales", "customer", ["main", "1"]),
            ("2", "hr", "job_applicant", ["main", "2"]),
            ("0", "reception", None, ["main", "0"]),
            ("31", "sales", "partner", ["main", "3", "partners", "1"]),
        ]
    ):
        steps = [WaitPlayback("main-menu", 15), Press(keys[0])]
        if len(keys) > 1:
            steps += [Wait(0.5), WaitPlayback("main-menu", 15), Press(keys[1])]
        call = await pbx.driver.place_call(
            WEBSITE, f"+7495123000{n}", steps=[*steps, WaitBridged(15), Hangup()]
        )
        await asyncio.wait_for(call.ended, 30)
        await call.wait_script()
        rows = await pbx.wait_ended(n + 1)
        row = rows[-1]
        assert row["outcome"] == "answered", row
        assert row["answered_by"] == agents[team]
        assert row["category"] == category
        assert row["menu_path"] == path


async def test_voicemail_option(pbx: Pbx) -> None:
    await start(pbx)
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951230009",
        steps=[
            WaitPlayback("main-menu", 15),
            Press("8"),
            WaitPlayback("leave-message", 15),
            Wait(3.5),
            Press("#"),
            Wait(3),
        ],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "voicemail" and row["category"] == "other"
    assert row["voicemail"].startswith("voicemail/general/")


async def test_silence_and_wrong_keys_end_with_the_operator(pbx: Pbx) -> None:
    agents = await start(pbx)
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951230010",
        steps=[
            WaitPlayback("main-menu", 15),
            Press("7"),
            Wait(0.5),
            Press("#"),
            Wait(0.3),
            Press("*"),
            WaitBridged(30),
            Hangup(),
        ],
    )
    await asyncio.wait_for(call.ended, 40)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "answered" and row["answered_by"] == agents["reception"]
    assert row["menu_path"][-1] == "default"
    [chosen] = [e for e in row["events"] if e["kind"] == "menu"]
    assert chosen["reason"] == "retries_exhausted"


async def test_barge_in_stops_the_prompt_at_once(pbx: Pbx) -> None:
    sim = needs_simulator(pbx)
    await start(pbx)
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951230011",
        steps=[WaitPlayback("main-menu", 15), Press("1"), WaitBridged(15), Hangup()],
    )
    await asyncio.wait_for(call.ended, 30)
    await pbx.wait_ended(1)
    stops = [
        r
        for r in sim.requests
        if r["method"] == "DELETE" and r["path"].startswith("/ari/playbacks/")
    ]
    assert len(stops) == 1 and stops[0]["status"] == 204
    finished = [
        e
        for e in call.events
        if e.type == "PlaybackFinished"
        and "main-menu" in (e.playback.media_uri if e.playback else "")
    ]
    assert finished and finished[0].playback is not None
    assert finished[0].playback.state == "done"


async def test_hangup_in_the_menu_is_logged_with_the_step(pbx: Pbx) -> None:
    await start(pbx)
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951230012",
        steps=[WaitPlayback("main-menu", 15), Press("3"), Wait(0.3), Hangup()],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "abandoned" and row["callback_task"]
    [hangup] = [e for e in row["events"] if e["kind"] == "caller_hangup"]
    assert hangup["step"] == "menu"
    assert row["menu_path"] == ["main", "3", "partners"]


@pytest.mark.parametrize(
    ("until", "step", "outcome"),
    [
        ([WaitPlayback("greeting", 15)], "greeting", "abandoned"),
        ([WaitPlayback("main-menu", 15)], "menu", "abandoned"),
        (
            [WaitPlayback("main-menu", 15), Press("8"), WaitPlayback("leave-message", 15)],
            "voicemail",
            "abandoned",
        ),
        ([WaitPlayback("main-menu", 15), Press("1"), WaitBridged(15)], "talk", "answered"),
    ],
)
async def test_hangup_at_each_step_is_logged_with_it(
    pbx: Pbx, until: list[Any], step: str, outcome: str
) -> None:
    await start(pbx)
    call = await pbx.driver.place_call(WEBSITE, "+74951230013", steps=[*until, Hangup()])
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == outcome
    [hangup] = [e for e in row["events"] if e["kind"] == "caller_hangup"]
    assert hangup["step"] == step
