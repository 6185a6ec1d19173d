"""The callback queue while the daemon runs: the BLF key lights up while tasks are due, and
an agent calling the customer back from a desk phone (FastAGI) closes the task."""

from __future__ import annotations

import asyncio

from pbx_service.agi.testing import FakeAsterisk, request_block
from pbx_service.callbacks import queue as callbacks_queue
from pbx_service.simulator.driver import AgentBehaviour
from tests.fixtures.pbx import Pbx


async def test_due_tasks_light_the_blf_key_and_a_dial_back_closes_the_task(pbx: Pbx) -> None:
    agent = pbx.agent("e101", AgentBehaviour.never_answers())
    config = pbx.config(
        reception=[agent],
        ring_timeout=10,
        callbacks={"sla_minutes": 0, "check_seconds": 0.2},
        outbound={"company_number": "+74952223344", "company_name": "Romashka"},
    )
    daemon = await pbx.start_daemon(config)
    rest = pbx.driver.client.rest

    async def blf() -> str:
        return await rest.get_device_state("Stasis:pbx-callbacks")

    call = await pbx.driver.place_call("84952223344", "+79161112233", steps=[])
    await pbx.driver.wait_leg("e101")
    await rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert row["callback_task"]
    for _ in range(100):
        if await blf() == "BUSY":
            break
        await asyncio.sleep(0.05)
    assert await blf() == "BUSY"

    # Agent 101 dials the customer back from the desk phone: the dialplan runs our AGI.
    assert daemon.agi is not None
    agi = await FakeAsterisk.connect(
        daemon.agi.port,
        request_block("outbound", args=["89161112233"], callerid="101", extension="89161112233"),
    )
    sent: list[bytes] = []
    while command := await agi.expect():
        sent.append(command)
        await agi.send(b"200 result=1\n")
    await agi.close()
    assert b'SET VARIABLE "CALLERID(num)" "+74952223344"\n' in sent
    for _ in range(100):
        if await blf() == "NOT_INUSE":
            break
        await asyncio.sleep(0.05)
    assert await blf() == "NOT_INUSE"
    [row] = await pbx.calls()
    tasks = await callbacks_queue.list_tasks(pbx.database_url)
    assert [(t["status"], t["closed_by"]) for t in tasks] == [("done", "101")]
