"""The caller driver against the simulator: calls reach ``pbx-service``, keys arrive in order,
agents' phones behave as configured. The service side is the small `ServiceApp` stand-in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbx_service.ari.client import AriClient
from pbx_service.ari.models import AriEvent
from pbx_service.simulator.driver import (
    AgentBehaviour,
    CallerDriver,
    DriverError,
    Hangup,
    Press,
    StepTimeout,
    Wait,
    WaitAnswered,
    WaitBridged,
    WaitPlayback,
    format_caller_id,
)
from tests.simulator_driver.conftest import PASSWORD, USER, ServiceApp

pytestmark = pytest.mark.timeout(30)


def _is_caller_start(event: AriEvent) -> bool:
    return any(a.startswith("did=") for a in event.args)


async def test_call_reaches_service_which_answers_plays_and_hangs_up(
    driver: CallerDriver, service: ServiceApp
) -> None:
    async def answer_play_hangup(event: AriEvent) -> None:
        cid = event.channel_id
        assert cid is not None
        rest = service.client.rest
        await rest.answer(cid)
        pb = await rest.play(cid, "sound:beep", playback_id="drv-pb-1")
        await service.wait_event(
            lambda e: (
                e.type == "PlaybackFinished" and e.playback is not None and e.playback.id == pb.id
            )
        )
        await rest.hangup(cid)

    service.on_start = answer_play_hangup
    call = await driver.place_call(
        "100",
        "+79161234567",
        caller_name="Ivan Petrov",
        steps=[WaitAnswered(5), WaitPlayback("beep", 5)],
    )
    await asyncio.wait_for(call.ended, 10)
    await call.wait_script()

    start = await service.wait_event(_is_caller_start)
    assert start.args == ("did=100",)
    assert start.channel_id == call.peer_id
    assert start.channel is not None
    assert start.channel.caller.number == "+79161234567"
    assert start.channel.caller.name == "Ivan Petrov"
    assert call.answered_at is not None
    assert call.playbacks == ["sound:beep"]
    assert call.hangup_cause == 16
    assert call.stasis_status == "SUCCESS"
    types = [e.type for e in call.events]
    assert "StasisStart" in types and types[-1] == "ChannelDestroyed"
    assert not service.errors


async def test_caller_keys_arrive_in_order(driver: CallerDriver, service: ServiceApp) -> None:
    async def answer(event: AriEvent) -> None:
        assert event.channel_id is not None
        await service.client.rest.answer(event.channel_id)

    service.on_start = answer
    call = await driver.place_call(
        "200",
        "+74951112233",
        steps=[WaitAnswered(5), Press("12#"), Press("3", duration_ms=150), Wait(0.1), Press("*")],
    )
    await call.wait_script()
    digits = ""
    for _ in range(100):
        digits = "".join(e.digit or "" for e in service.of(call.peer_id, "ChannelDtmfReceived"))
        if len(digits) >= 5:
            break
        await asyncio.sleep(0.05)
    assert digits == "12#3*"
    durations = [e.duration_ms for e in service.of(call.peer_id, "ChannelDtmfReceived")]
    assert durations[3] == 150
    await service.client.rest.hangup(call.peer_id)
    await asyncio.wait_for(call.ended, 5)


async def test_caller_hangs_up(driver: CallerDriver, service: ServiceApp) -> None:
    async def answer(event: AriEvent) -> None:
        assert event.channel_id is not None
        await service.client.rest.answer(event.channel_id)

    service.on_start = answer
    call = await driver.place_call("300", "+7900", steps=[WaitAnswered(5), Hangup()])
    await asyncio.wait_for(call.ended, 5)
    request = await service.wait_event(
        lambda e: e.type == "ChannelHangupRequest" and e.channel_id == call.peer_id
    )
    assert request.cause == 16 and not request.soft
    await service.wait_event(lambda e: e.type == "StasisEnd" and e.channel_id == call.peer_id)


async def test_wait_step_times_out_when_nobody_answers(
    driver: CallerDriver, service: ServiceApp
) -> None:
    call = await driver.place_call("400", "+7901", steps=[WaitAnswered(0.3)])
    with pytest.raises(StepTimeout, match="answer"):
        await call.wait_script()
    assert call.answered_at is None
    await service.wait_event(_is_caller_start)
    await service.client.rest.hangup(call.peer_id)
    await asyncio.wait_for(call.ended, 5)


async def _ring_agent(service: ServiceApp, dial: str, caller_id: str, leg: str) -> None:
    await service.client.rest.originate(
        dial,
        app="pbx-service",
        app_args="agent",
        originator=caller_id,
        channel_id=leg,
        other_channel_id=f"{leg}-2",
        timeout=10,
    )


def _dialstatuses(service: ServiceApp, leg: str) -> list[str]:
    out: list[str] = []
    for e in service.events:
        peer = e.raw.get("peer")
        if e.type == "Dial" and isinstance(peer, dict) and peer.get("id") == leg:
            out.append(e.dialstatus or "")
    return out


async def _call_with_agent(
    driver: CallerDriver, service: ServiceApp, name: str, behaviour: AgentBehaviour
) -> tuple[Any, str]:
    dial = driver.agent(name, behaviour)
    leg = f"leg-{name}"

    async def on_start(event: AriEvent) -> None:
        if _is_caller_start(event):
            assert event.channel_id is not None
            await service.client.rest.answer(event.channel_id)
            await _ring_agent(service, dial, event.channel_id, leg)

    service.on_start = on_start
    call = await driver.place_call("500", "+7902", steps=[WaitAnswered(5)])
    await call.wait_script()
    return call, leg


async def test_agent_answers_after_delay(driver: CallerDriver, service: ServiceApp) -> None:
    call, leg = await _call_with_agent(driver, service, "agent1", AgentBehaviour.answers(0.3))
    start = await service.wait_event(lambda e: e.type == "StasisStart" and e.channel_id == leg)
    agent = await driver.wait_leg("agent1")
    assert agent.answered_at is not None
    assert agent.answered_at - agent.arrived_at >= 0.3
    assert start.args == ("agent",)
    assert _dialstatuses(service, leg)[-1] == "ANSWER"
    assert "RINGING" in _dialstatuses(service, leg)
    await service.client.rest.hangup(leg)
    await asyncio.wait_for(agent.ended, 5)
    await service.client.rest.hangup(call.peer_id)
    await asyncio.wait_for(call.ended, 5)


async def test_agent_never_answers(driver: CallerDriver, service: ServiceApp) -> None:
    call, leg = await _call_with_agent(driver, service, "agent2", AgentBehaviour.never_answers())
    agent = await driver.wait_leg("agent2")
    await asyncio.sleep(0.5)
    assert agent.answered_at is None and not agent.ended.done()
    assert _dialstatuses(service, leg)[-1] == "RINGING"
    await service.client.rest.hangup(leg, reason="answered_elsewhere")
    await asyncio.wait_for(agent.ended, 5)
    assert agent.hangup_cause == 26
    await service.client.rest.hangup(call.peer_id)


async def test_agent_rejects_busy(driver: CallerDriver, service: ServiceApp) -> None:
    call, leg = await _call_with_agent(driver, service, "agent3", AgentBehaviour.busy())
    agent = await driver.wait_leg("agent3")
    destroyed = await service.wait_event(
        lambda e: e.type == "ChannelDestroyed" and e.channel_id == leg
    )
    assert agent.rejected
    # No trace shows the Dial status when the *phone* half refuses; the cause is certain.
    assert destroyed.cause == 17
    assert "ANSWER" not in _dialstatuses(service, leg)
    await service.client.rest.hangup(call.peer_id)


async def test_agent_answers_then_hangs_up(driver: CallerDriver, service: ServiceApp) -> None:
    call, leg = await _call_with_agent(
        driver, service, "agent4", AgentBehaviour.answers_then_hangs_up(0.1, 0.3)
    )
    agent = await driver.wait_leg("agent4")
    await service.wait_event(lambda e: e.type == "StasisStart" and e.channel_id == leg)
    await service.wait_event(lambda e: e.type == "StasisEnd" and e.channel_id == leg)
    assert agent.hung_up_by_agent
    assert agent.answered_at is not None
    await service.client.rest.hangup(call.peer_id)


async def test_agent_answers_then_presses_keys(driver: CallerDriver, service: ServiceApp) -> None:
    call, leg = await _call_with_agent(
        driver, service, "agent5", AgentBehaviour.answers_then_presses("59", 0.1, 0.2)
    )
    await service.wait_event(lambda e: e.type == "StasisStart" and e.channel_id == leg)
    await service.wait_event(
        lambda e: e.type == "ChannelDtmfReceived" and e.channel_id == leg and e.digit == "9"
    )
    digits = [e.digit for e in service.of(leg, "ChannelDtmfReceived")]
    assert digits == ["5", "9"]
    await service.client.rest.hangup(leg)
    await service.client.rest.hangup(call.peer_id)


async def test_wait_bridged_sees_the_peer(driver: CallerDriver, service: ServiceApp) -> None:
    dial = driver.agent("agent6", AgentBehaviour.answers(0.0))

    async def on_start(event: AriEvent) -> None:
        rest = service.client.rest
        assert event.channel_id is not None
        if _is_caller_start(event):
            await rest.answer(event.channel_id)
            await rest.create_bridge("drv-br", type="mixing")
            await rest.add_channel("drv-br", event.channel_id)
            await _ring_agent(service, dial, event.channel_id, "leg-agent6")
        elif event.channel_id == "leg-agent6":
            await rest.add_channel("drv-br", "leg-agent6")

    service.on_start = on_start
    call = await driver.place_call("600", "+7903", steps=[WaitAnswered(5), WaitBridged(5)])
    await call.wait_script()
    assert call.bridged_with is not None
    assert call.bridged_with.startswith("Local/agent6@test-caller")
    await service.client.rest.hangup(call.peer_id)
    await service.client.rest.hangup("leg-agent6")


def test_caller_id_format() -> None:
    assert format_caller_id("Ivan", "+7916") == '"Ivan" <+7916>'
    assert format_caller_id('A "B"', "1") == '"A \\"B\\"" <1>'
    assert format_caller_id(None, "+7916") == "<+7916>"


async def test_misuse_is_refused() -> None:
    async with AriClient("http://127.0.0.1:9/ari", USER, PASSWORD, "pbx-service") as client:
        with pytest.raises(DriverError, match="caller-sim"):
            CallerDriver(client)
    async with AriClient("http://127.0.0.1:9/ari", USER, PASSWORD, "caller-sim") as client:
        drv = CallerDriver(client)
        with pytest.raises(DriverError, match="dialplan pattern"):
            drv.agent("Agent", AgentBehaviour.answers())
        with pytest.raises(DriverError, match="bare number"):
            await drv.place_call("100@x", "1")
