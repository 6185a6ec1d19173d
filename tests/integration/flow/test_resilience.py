"""What happens when things break: the link to Asterisk drops mid-call, the daemon is not
connected at all, the config is wrong."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from pbx_service.simulator.driver import AgentBehaviour, WaitBridged
from pbx_service.simulator.proxy import TcpProxy
from tests.fixtures.pbx import Pbx, needs_simulator

WEBSITE = "84952223344"


async def test_connection_gap_resyncs_with_two_requests_and_finishes_calls(pbx: Pbx) -> None:
    talker = pbx.agent("c101", AgentBehaviour.answers(after=0.2))
    # An agent takes one call at a time: B needs a second one.
    other = pbx.agent("c102", AgentBehaviour.answers(after=0.5))
    proxy = TcpProxy(pbx.ari_url)
    await proxy.start()
    try:
        config = pbx.config(reception=[talker, other], ring_timeout=30)
        config = config.model_copy(update={"ari": config.ari.model_copy(update={"url": proxy.url})})
        daemon = await pbx.start_daemon(config)
        assert daemon.app is not None and daemon.client is not None

        # Calls A and B are talking when the link breaks.
        a = await pbx.driver.place_call(WEBSITE, "+74951230001", steps=[WaitBridged(15)])
        await a.wait_script()
        b = await pbx.driver.place_call(WEBSITE, "+74951230002", steps=[WaitBridged(15)])
        await b.wait_script()

        proxy.cut_now()
        await pbx.wait_until(lambda: not daemon.client.connected, what="the socket to drop")
        # During the gap A's caller hangs up: ARI will replay nothing of it.
        await pbx.driver.client.rest.hangup(a.channel_id)
        await asyncio.wait_for(a.ended, 10)
        sim = pbx.sim
        requests_before = len(sim.requests) if sim is not None else 0
        proxy.restore()
        await daemon.wait_connected(15)
        await pbx.wait_until(lambda: daemon.app.resyncs == 1, what="the resync")

        rows = await pbx.wait_ended(1)
        [row_a] = [r for r in rows if r["caller"] == "+74951230001"]
        assert row_a["outcome"] == "answered"
        hangup = [e for e in row_a["events"] if e["kind"] == "caller_hangup"]
        assert hangup and "gap" in hangup[0]["why"]
        # B survived the gap and is still connected; it ends normally afterwards.
        assert not b.ended.done()
        await pbx.driver.client.rest.hangup(b.channel_id)
        rows = await pbx.wait_ended(2)
        [row_b] = [r for r in rows if r["caller"] == "+74951230002"]
        assert row_b["outcome"] == "answered"
        assert [e["kind"] for e in row_b["events"]][-2:] == ["caller_hangup", "ended"]
        if sim is not None:
            after = sim.requests[requests_before:]
            listing = [
                r
                for r in after
                if r["method"] == "GET" and r["path"] in ("/ari/channels", "/ari/bridges")
            ]
            assert sorted(r["path"] for r in listing) == ["/ari/bridges", "/ari/channels"]
    finally:
        await pbx.stop_daemon()
        await proxy.stop()


async def test_daemon_not_connected_the_dialplan_falls_back(pbx: Pbx) -> None:
    # No daemon at all: Stasis() fails at once and the dialplan rings reception itself.
    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[])
    await pbx.wait_until(lambda: call.stasis_status == "FAILED", what="STASISSTATUS=FAILED")
    await pbx.driver.client.rest.hangup(call.channel_id)
    await asyncio.wait_for(call.ended, 10)
    assert await pbx.calls() == []  # nothing reached the daemon; Asterisk handled it


async def test_bad_config_stops_before_touching_asterisk(pbx: Pbx, tmp_path: Path) -> None:
    sim = needs_simulator(pbx)
    before = len(sim.requests)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"ari: {{url: '{pbx.ari_url}'}}\n"
        "lines: [{did: '84952223344', label: website}]\n"
        "teams: {reception: {members: ['PJSIP 101'], ring_timeout: -3}}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PBX_ARI_PASSWORD": pbx.password, "DATABASE_URL": pbx.database_url}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pbx_service.cli", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "teams.reception.members" in proc.stderr
    assert "teams.reception.ring_timeout" in proc.stderr
    assert str(bad) in proc.stderr
    # The caller driver keeps pinging; the daemon would first open its events socket.
    touched = [
        r
        for r in sim.requests[before:]
        if r["query"].get("app") == "pbx-service" or r["path"] != "/ari/asterisk/ping"
    ]
    assert touched == [], "the daemon must not touch Asterisk with a bad config"
