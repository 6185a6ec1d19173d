"""Agent presence from desk phones: log out, log in, pause; routing follows it and the agent's
state is published as a device state (BLF keys, `devstate list`)."""

from __future__ import annotations

import asyncio

from pbx_service.simulator import PhoneBehaviour
from pbx_service.simulator.driver import AgentBehaviour, Hangup, WaitBridged
from tests.fixtures.pbx import Pbx, needs_simulator


async def feature_code(pbx: Pbx, phone: str, *args: str) -> None:
    """The agent dials a presence code: Stasis(pbx-service,presence,<action>,<ext>,...)."""
    await pbx.driver.client.rest.originate(
        phone, app="pbx-service", app_args=",".join(["presence", *args])
    )


async def blf(pbx: Pbx, agent: str) -> str:
    return await pbx.driver.client.rest.get_device_state(f"Stasis:agent-{agent}")


async def wait_blf(pbx: Pbx, agent: str, state: str) -> None:
    for _ in range(100):
        if await blf(pbx, agent) == state:
            return
        await asyncio.sleep(0.05)
    assert await blf(pbx, agent) == state


async def test_logged_out_agent_is_not_rung_and_the_key_shows_it(pbx: Pbx) -> None:
    ivanov = pbx.agent("p101", AgentBehaviour.answers(after=0.2))
    petrov = pbx.agent("p102", AgentBehaviour.answers(after=0.5))
    desk = pbx.agent("p9101", AgentBehaviour.answers(after=0.1))  # ivanov's phone for codes
    config = pbx.config(
        reception=["ivanov", "petrov"],
        agents={
            "ivanov": {"endpoint": ivanov, "extension": "101"},
            "petrov": {"endpoint": petrov, "extension": "102"},
        },
    )
    await pbx.start_daemon(config)

    await feature_code(pbx, desk, "logout", "101")
    await wait_blf(pbx, "ivanov", "UNAVAILABLE")
    call = await pbx.driver.place_call(
        "84952223344", "+74951230101", steps=[WaitBridged(15), Hangup()]
    )
    await asyncio.wait_for(call.ended, 20)
    [row] = await pbx.wait_ended(1)
    assert row["answered_by"] == petrov
    assert not pbx.driver.legs_of("p101"), "a logged-out agent is never rung"

    await feature_code(pbx, desk, "pause", "101", "lunch")
    await wait_blf(pbx, "ivanov", "ONHOLD")
    await feature_code(pbx, desk, "login", "101")
    await wait_blf(pbx, "ivanov", "NOT_INUSE")
    call = await pbx.driver.place_call(
        "84952223344", "+74951230102", steps=[WaitBridged(15), Hangup()]
    )
    await asyncio.wait_for(call.ended, 20)
    rows = await pbx.wait_ended(2)
    assert rows[-1]["answered_by"] == ivanov  # answers first again


async def test_an_agent_whose_phone_goes_offline_is_not_rung(pbx: Pbx) -> None:
    sim = needs_simulator(pbx)
    sim.add_phone("PJSIP/301", PhoneBehaviour.answers(after=0.2))
    sim.add_phone("PJSIP/302", PhoneBehaviour.answers(after=0.6))
    await pbx.start_daemon(pbx.config(reception=["PJSIP/301", "PJSIP/302"]))
    await asyncio.sleep(0.3)  # the daemon subscribes to endpoint states after connecting
    sim.add_phone("PJSIP/301", PhoneBehaviour.offline())  # unregisters: EndpointStateChange
    await wait_blf(pbx, "PJSIP-301", "UNAVAILABLE")  # published when the phone went away
    before = len(sim.requests)
    call = await pbx.driver.place_call(
        "84952223344", "+74951230103", steps=[WaitBridged(15), Hangup()]
    )
    await asyncio.wait_for(call.ended, 20)
    [row] = await pbx.wait_ended(1)
    assert row["answered_by"] == "PJSIP/302"
    originates = [
        r for r in sim.requests[before:] if r["method"] == "POST" and r["path"] == "/ari/channels"
    ]
    rung = [r["query"]["endpoint"] for r in originates]
    assert [e for e in rung if e.startswith("PJSIP/")] == ["PJSIP/302"]
