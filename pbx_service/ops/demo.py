"""`pbx-service demo`: the whole product on one machine, no Asterisk needed.

Starts an embedded PostgreSQL, the ARI simulator with two reception phones, and the real
daemon connected to it over HTTP/WebSocket; plays three scripted calls; prints the call log
from PostgreSQL and the number of lost calls (which must be 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from pbx_service.audio import shipped_prompts_dir
from pbx_service.callbacks.queue import list_tasks
from pbx_service.config import Config
from pbx_service.daemon import Daemon, Database
from pbx_service.ops.calllog import render_calls
from pbx_service.simulator import (
    Hangup,
    PhoneBehaviour,
    SendDtmf,
    Simulator,
    Talk,
    Wait,
    WaitBridged,
    WaitPlayback,
)
from pbx_service.store.queries import call_summary, list_calls

log = logging.getLogger(__name__)

DEMO_USER = "pbx-service"
DEMO_PASSWORD = "demo-secret"
RECEPTION = ("PJSIP/101", "PJSIP/102")


def demo_config(ari_url: str, data_dir: Path) -> Config:
    return Config.model_validate(
        {
            "ari": {"url": ari_url, "username": DEMO_USER, "password": DEMO_PASSWORD},
            "storage": {"data_dir": str(data_dir)},
            "database": {"batch_seconds": 0.2},
            "language": "ru",
            "lines": [
                {"did": "84952223344", "label": "website"},
                {"did": "84952223345", "label": "business cards"},
                {"did": "84952223346", "label": "HR ads"},
                {"did": "84951110000", "label": "old sales line"},
            ],
            "teams": {"reception": {"members": list(RECEPTION), "ring_timeout": 8}},
            "flow": {"voicemail": {"max_seconds": 30, "max_silence_seconds": 0}},
        }
    )


async def run_demo(*, time_scale: float = 0.25, data_dir: Path | None = None) -> int:
    """Run the three scripted calls; returns the exit status (0 when no call was lost)."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pbx-demo-")))
        return await _run(data_dir, time_scale)
    raise AssertionError("unreachable")  # pragma: no cover


async def _run(data_dir: Path, time_scale: float) -> int:
    started = time.monotonic()
    say("starting the ARI simulator (an Asterisk stand-in) and an embedded PostgreSQL ...")
    sim = Simulator(
        username=DEMO_USER,
        password=DEMO_PASSWORD,
        sound_dirs=[("pbx", shipped_prompts_dir())],
        recordings_dir=data_dir / "recording",
        time_scale=time_scale,
        fallback_endpoints=RECEPTION,
    )
    await sim.start()
    config = demo_config(sim.base_url, data_dir)
    database = await Database.open(config, data_dir)
    daemon = Daemon(config, data_dir=data_dir, database=database, node="demo")
    try:
        await daemon.start()
        await daemon.wait_connected(10)
        say(f"daemon connected to {sim.base_url} (app pbx-service)")

        say("call 1: a customer dials the website number; reception phone 101 answers")
        sim.add_phone("PJSIP/101", PhoneBehaviour.answers(after=2))
        sim.add_phone("PJSIP/102", PhoneBehaviour.never_answers())
        first = await sim.place_call(
            "+79161234567",
            "84952223344",
            caller_name="Иван Петров",
            steps=[WaitBridged(60), Talk(6), Hangup()],
        )
        await _ended(first, "call 1")

        say("call 2: the business-cards number at lunch; nobody answers; voicemail")
        sim.add_phone("PJSIP/101", PhoneBehaviour.never_answers())
        second = await sim.place_call(
            "84957654321",
            "84952223345",
            caller_name="ООО Ромашка",
            steps=[
                WaitPlayback("leave-message", until="finished", timeout=120),
                Talk(8),
                SendDtmf("#"),
                Wait(30),
            ],
        )
        await _ended(second, "call 2")

        say("call 3: the old sales line; the caller gives up while it rings")
        third = await sim.place_call(
            "+78121234567",
            "84951110000",
            steps=[WaitPlayback("greeting", until="finished", timeout=60), Wait(3), Hangup()],
        )
        await _ended(third, "call 3")

        await _settled(daemon)
        rows = await list_calls(database.url)
        summary = await call_summary(database.url)
        tasks = await list_tasks(database.url)
    finally:
        await daemon.stop()
        await sim.stop()
        await database.close()

    print()
    print(render_calls(rows, "table"))
    print()
    lost = int(summary.get("lost", 0))
    outcomes = sorted(summary.get("by_outcome", {}).items())
    by_outcome = ", ".join(f"{k}: {v}" for k, v in outcomes if v)
    print(f"calls: {len(rows)} ({by_outcome})")
    for task in tasks:
        sources = ", ".join(task["sources"])
        print(f"callback task: {task['number']} ({sources}), due {task['due_at']}")
    print(f"lost calls: {lost}")
    say(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0 if lost == 0 and len(rows) == 3 else 1


async def _ended(handle: Any, label: str) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(handle.ended), 120)
    except TimeoutError:
        say(f"{label}: did not end within 120 s")
        raise


async def _settled(daemon: Daemon, timeout: float = 30.0) -> None:
    """Wait until the daemon has finished every call and written it to PostgreSQL."""
    assert daemon.app is not None and daemon.writer is not None
    await daemon.app.wait_idle(timeout)
    await daemon.writer.flush()


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)
