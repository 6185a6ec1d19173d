"""`pbx-service run` as an operator starts it: a process, a config file, secrets in the
environment; it serves a call and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import yaml

from pbx_service.simulator.driver import AgentBehaviour, Hangup, WaitBridged
from tests.fixtures.pbx import Pbx, needs_simulator


async def test_run_serves_a_call_and_stops_on_sigterm(pbx: Pbx, tmp_path: Path) -> None:
    needs_simulator(pbx)
    agent = pbx.agent("f101", AgentBehaviour.answers(after=0.2))
    config = {
        "ari": {"url": pbx.ari_url, "username": pbx.username, "ping_interval": 1},
        "storage": {"data_dir": str(tmp_path / "data")},
        "lines": [{"did": "84952223344", "label": "website"}],
        "teams": {"reception": {"members": [agent], "ring_timeout": 5}},
        "agi": {"port": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "PBX_ARI_PASSWORD": pbx.password, "DATABASE_URL": pbx.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pbx_service.cli",
        "run",
        "--config",
        str(path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        call = None
        for _ in range(200):  # the daemon needs a moment to connect its socket
            call = await pbx.driver.place_call(
                "84952223344", "+74951234567", steps=[WaitBridged(10), Hangup()]
            )
            await asyncio.wait_for(call.ended, 20)
            if call.stasis_status != "FAILED":
                break
            await asyncio.sleep(0.1)
        assert call is not None and call.bridged_with, "the daemon never answered"
        rows = await pbx.wait_ended(1)
        assert rows[-1]["outcome"] == "answered"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, output.decode()
    assert pbx.password not in output.decode()
