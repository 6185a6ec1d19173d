"""Working the callback queue from a desk phone (feature code *9), end to end: the agent's
phone enters the daemon, the most urgent task is claimed, the customer is dialled presenting
the company number and bridged; the result closes or reschedules the task."""

from __future__ import annotations

import asyncio

from pbx_service.callbacks import queue
from pbx_service.simulator.driver import AgentBehaviour
from tests.fixtures.pbx import Pbx

CUSTOMER = "+79161112233"


async def make_task(pbx: Pbx, customer: AgentBehaviour) -> tuple[str, str]:
    """A caller gives up while it rings: that makes the task. Returns the dial strings."""
    reception = pbx.agent("h201", AgentBehaviour.never_answers())
    pbx.agent(CUSTOMER.lstrip("+"), customer)  # the customer's phone, when we call back
    agent_phone = pbx.agent("a9101", AgentBehaviour.answers(after=0.1))
    config = pbx.config(
        reception=[reception],
        ring_timeout=10,
        callbacks={"sla_minutes": 0},
        outbound={
            "company_number": "+74952223344",
            "company_name": "Romashka",
            "dial_template": "Local/{digits}@test-caller",
            "ring_timeout": 3,
        },
    )
    await pbx.start_daemon(config)
    call = await pbx.driver.place_call("84952223344", CUSTOMER, steps=[])
    await pbx.driver.wait_leg("h201")
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert row["callback_task"]
    return agent_phone, row["callback_task"]


async def dial_star9(pbx: Pbx, agent_phone: str) -> None:
    """Agent 101 dials *9: the dialplan's Stasis(pbx-service,callbacks,101), played here by
    originating the agent's phone into the daemon's app with the same arguments."""
    await pbx.driver.client.rest.originate(
        agent_phone, app="pbx-service", app_args="callbacks,101", caller_id="Agent <101>"
    )


async def task_status(pbx: Pbx, task_id: str) -> dict[str, object]:
    [task] = [t for t in await queue.list_tasks(pbx.database_url) if t["id"] == task_id]
    return task


async def test_customer_answers_and_the_task_is_done(pbx: Pbx) -> None:
    agent_phone, task_id = await make_task(pbx, AgentBehaviour.answers(after=0.3))
    await dial_star9(pbx, agent_phone)
    leg = await pbx.driver.wait_leg(CUSTOMER.lstrip("+"), timeout=15)
    start = next(e for e in leg.events if e.type == "StasisStart")
    assert start.channel is not None and start.channel.caller.number == "+74952223344"
    for _ in range(100):
        if (await task_status(pbx, task_id))["status"] == "done":
            break
        await asyncio.sleep(0.1)
    task = await task_status(pbx, task_id)
    assert task["status"] == "done" and task["closed_by"] == "101"
    await pbx.driver.client.rest.hangup(leg.channel_id)


async def test_customer_busy_reschedules_the_task(pbx: Pbx) -> None:
    agent_phone, task_id = await make_task(pbx, AgentBehaviour.busy(after=0.2))
    await dial_star9(pbx, agent_phone)
    await pbx.driver.wait_leg(CUSTOMER.lstrip("+"), timeout=15)
    for _ in range(100):
        task = await task_status(pbx, task_id)
        if task["dial_attempts"]:
            break
        await asyncio.sleep(0.1)
    assert task["status"] == "open" and task["dial_attempts"] == 1
    assert task["claimed_by"] is None


async def test_customer_does_not_answer_reschedules_the_task(pbx: Pbx) -> None:
    agent_phone, task_id = await make_task(pbx, AgentBehaviour.never_answers())
    await dial_star9(pbx, agent_phone)
    leg = await pbx.driver.wait_leg(CUSTOMER.lstrip("+"), timeout=15)
    for _ in range(150):
        task = await task_status(pbx, task_id)
        if task["dial_attempts"]:
            break
        await asyncio.sleep(0.1)
    assert task["status"] == "open" and task["dial_attempts"] == 1
    await asyncio.wait_for(leg.ended, 10)  # the customer's phone stopped ringing
