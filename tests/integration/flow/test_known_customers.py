"""Known customers: the directory names them on the agent's phone, and tier A customers skip
the menu to ring their account manager first, then the manager's team, then the normal path."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbx_service.contacts import import_contacts
from pbx_service.simulator.driver import AgentBehaviour, Hangup, WaitBridged
from tests.fixtures.pbx import Pbx

WEBSITE = "84952223344"
CSV = (
    "ФИО;Компания;Телефон;Категория;Менеджер\n"
    "Иван Петров;ООО Ромашка;8 (916) 123-45-67;A;ivanov\n"
    "Пётр Сидоров;ИП Сидоров;+7 916 765-43-21;B;ivanov\n"
)


async def setup(pbx: Pbx, tmp_path: Path, manager: AgentBehaviour) -> dict[str, str]:
    path = tmp_path / "crm.csv"
    path.write_bytes(CSV.encode("cp1251"))
    report = await import_contacts(pbx.database_url, path)
    assert report.imported == 2, report.render()
    dial = {
        "ivanov": pbx.agent("mgr1", manager),
        "colleague": pbx.agent("sales2", AgentBehaviour.answers(after=0.3)),
        "reception": pbx.agent("rec1", AgentBehaviour.answers(after=0.3)),
    }
    config = pbx.config(
        reception=[dial["reception"]],
        agents={"ivanov": {"name": "Ivan Ivanov", "endpoint": dial["ivanov"]}},
        teams={"sales": {"members": ["ivanov", dial["colleague"]], "ring_timeout": 1.5}},
        ivr={
            "menus": {
                "main": {"prompt": "main-menu", "timeout": 1, "options": {"1": {"team": "sales"}}}
            }
        },
    )
    await pbx.start_daemon(config)
    return dial


async def test_tier_a_rings_the_account_manager_first(pbx: Pbx, tmp_path: Path) -> None:
    dial = await setup(pbx, tmp_path, AgentBehaviour.answers(after=0.3))
    call = await pbx.driver.place_call(
        WEBSITE, "+79161234567", caller_name="IVAN", steps=[WaitBridged(15), Hangup()]
    )
    await asyncio.wait_for(call.ended, 20)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "answered" and row["answered_by"] == dial["ivanov"]
    assert row["menu_path"] == [] and row["category"] == "customer"
    [known] = [e for e in row["events"] if e["kind"] == "known_customer"]
    assert (known["name"], known["company"], known["tier"]) == ("Иван Петров", "ООО Ромашка", "A")
    # The manager's phone shows who is calling, from the directory.
    [leg] = pbx.driver.legs_of("mgr1")
    start = next(e for e in leg.events if e.type == "StasisStart")
    assert start.channel is not None
    assert start.channel.caller.name == "ООО Ромашка — Иван Петров"
    assert start.channel.caller.number == "+79161234567"


async def test_manager_away_then_the_team_then_the_normal_path(pbx: Pbx, tmp_path: Path) -> None:
    dial = await setup(pbx, tmp_path, AgentBehaviour.never_answers())
    call = await pbx.driver.place_call(WEBSITE, "8 916 123 45 67", steps=[WaitBridged(20)])
    await call.wait_script()
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    steps = [e["step"] for e in row["events"] if e["kind"] == "route_step"]
    assert steps == ["account_manager", "manager_team"]
    assert row["answered_by"] == dial["colleague"]


async def test_tier_b_goes_through_the_menu(pbx: Pbx, tmp_path: Path) -> None:
    await setup(pbx, tmp_path, AgentBehaviour.answers(after=0.3))
    call = await pbx.driver.place_call(WEBSITE, "+79167654321", steps=[WaitBridged(20)])
    await call.wait_script()
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert not [e for e in row["events"] if e["kind"] == "route_step"]
    assert row["menu_path"][0] == "main"  # heard the menu; the default took it to reception


async def test_direct_line_rings_the_named_person_first(pbx: Pbx) -> None:
    boss_phone = pbx.agent("boss1", AgentBehaviour.answers(after=0.2))
    reception = pbx.agent("rec2", AgentBehaviour.answers(after=0.2))
    config = pbx.config(
        reception=[reception],
        agents={"director": {"endpoint": boss_phone}},
        teams={"management": {"members": ["director"]}},
        direct_lines={"8 916 000-00-01": "director"},
        ivr={
            "menus": {
                "main": {"prompt": "main-menu", "timeout": 1, "options": {"0": {"operator": True}}}
            }
        },
    )
    await pbx.start_daemon(config)
    call = await pbx.driver.place_call(WEBSITE, "+79160000001", steps=[WaitBridged(15), Hangup()])
    await asyncio.wait_for(call.ended, 20)
    [row] = await pbx.wait_ended(1)
    assert row["answered_by"] == boss_phone and row["menu_path"] == []
    assert "direct_line" in [e["kind"] for e in row["events"]]
    # Everyone else goes through the line.
    other = await pbx.driver.place_call(WEBSITE, "+79160000002", steps=[WaitBridged(15), Hangup()])
    await asyncio.wait_for(other.ended, 20)
    rows = await pbx.wait_ended(2)
    assert rows[-1]["answered_by"] == reception and rows[-1]["menu_path"][0] == "main"
