"""The first complete flow, end to end: the real daemon over HTTP/WebSocket against the ARI
server, a real PostgreSQL, callers and agents played over ARI by the caller driver."""

from __future__ import annotations

import asyncio

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


async def test_answered_by_reception(pbx: Pbx) -> None:
    first = pbx.agent("a101", AgentBehaviour.answers(after=0.5))
    second = pbx.agent("a102", AgentBehaviour.never_answers())
    await pbx.start_daemon(pbx.config(reception=[first, second]))

    call = await pbx.driver.place_call(
        WEBSITE,
        "8 (916) 123-45-67",
        caller_name="Иван Петров",
        steps=[WaitBridged(15), Wait(1.0), Hangup()],
    )
    await asyncio.wait_for(call.ended, 20)
    await call.wait_script()

    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "answered"
    assert row["answered_by"] == first
    assert row["caller"] == "+79161234567"
    assert row["caller_name"] == "Иван Петров"
    assert row["did"] == WEBSITE and row["line_label"] == "website" and row["listed"]
    assert row["answered_at"] and row["started_at"] <= row["answered_at"] <= row["ended_at"]
    assert row["wait_seconds"] > 0.4
    assert row["talk_seconds"] >= 0.9
    kinds = [e["kind"] for e in row["events"]]
    assert kinds[0] == "incoming" and kinds[-1] == "ended"
    assert kinds.index("ringing") < kinds.index("bridged")
    [rung] = [e for e in row["events"] if e["kind"] == "rung"]
    results = {leg["endpoint"]: leg["result"] for leg in rung["rung"]}
    assert results == {first: "ANSWER", second: "answered_elsewhere"}
    # The losing phone stopped ringing; nothing is left behind on the PBX.
    await pbx.wait_until(
        lambda: all(leg.ended.done() for leg in pbx.driver.agent_legs),
        what="every agent leg to end",
    )


async def test_nobody_answers_caller_leaves_voicemail(pbx: Pbx) -> None:
    agents = [pbx.agent(n, AgentBehaviour.never_answers()) for n in ("a201", "a202")]
    await pbx.start_daemon(pbx.config(reception=agents, ring_timeout=1.5))

    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951234567",
        steps=[WaitPlayback("leave-message", 15), Wait(2.5), Press("#"), Wait(3)],
    )
    await asyncio.wait_for(call.ended, 30)

    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "voicemail"
    assert row["answered_by"] is None
    assert row["voicemail"] == f"voicemail/{WEBSITE}/{row['id']}"
    [rung] = [e for e in row["events"] if e["kind"] == "rung"]
    assert {leg["result"] for leg in rung["rung"]} == {"timeout"}
    played = call.playbacks
    assert any("greeting" in m for m in played)
    assert any("voicemail-thanks" in m for m in played), played
    sim = pbx.sim
    if sim is not None:
        wav = sim.config.recordings_dir / f"{row['voicemail']}.wav"
        assert wav.exists() and wav.stat().st_size > 44


async def test_caller_hangs_up_while_ringing(pbx: Pbx) -> None:
    agents = [pbx.agent(n, AgentBehaviour.never_answers()) for n in ("a301", "a302")]
    await pbx.start_daemon(pbx.config(reception=agents, ring_timeout=10))

    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[])
    await pbx.driver.wait_leg("a301", timeout=10)
    await pbx.driver.wait_leg("a302", timeout=10)
    await pbx.driver.client.rest.hangup(call.channel_id)
    await asyncio.wait_for(call.ended, 10)

    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "abandoned"
    hangup = [e for e in row["events"] if e["kind"] == "caller_hangup"]
    assert hangup and hangup[0]["step"] == "ring"
    # The daemon cancels the ringing legs itself: Asterisk does not (traces, file 14).
    await pbx.wait_until(
        lambda: all(leg.ended.done() for leg in pbx.driver.agent_legs),
        what="ringing legs to be cancelled",
    )


async def test_unlisted_number_is_served_by_the_same_flow(pbx: Pbx) -> None:
    agent = pbx.agent("a401", AgentBehaviour.answers(after=0.2))
    await pbx.start_daemon(pbx.config(reception=[agent]))
    call = await pbx.driver.place_call(
        "84990000000", "+74951234567", steps=[WaitBridged(15), Hangup()]
    )
    await asyncio.wait_for(call.ended, 20)
    [row] = await pbx.wait_ended(1)
    assert row["listed"] is False and row["line_label"] is None
    assert row["outcome"] == "answered"


async def test_agent_hangs_up_first_ends_the_call(pbx: Pbx) -> None:
    agent = pbx.agent("a501", AgentBehaviour.answers_then_hangs_up(after=0.2, hangup_after=1.0))
    await pbx.start_daemon(pbx.config(reception=[agent]))
    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[WaitBridged(15)])
    await asyncio.wait_for(call.ended, 20)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "answered"
    assert "agent_hangup" in [e["kind"] for e in row["events"]]


async def test_every_request_the_daemon_sends_validates_against_the_schema(pbx: Pbx) -> None:
    sim = needs_simulator(pbx)
    from tests.contract.schema import validate_request

    agent = pbx.agent("a601", AgentBehaviour.answers(after=0.2))
    await pbx.start_daemon(pbx.config(reception=[agent]))
    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[WaitBridged(15), Hangup()])
    await asyncio.wait_for(call.ended, 20)
    await pbx.wait_ended(1)
    problems = []
    for req in sim.requests:
        problems += validate_request(req["method"], req["path"], req["query"], req["body"])
    assert problems == []
