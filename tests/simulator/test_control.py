"""The `/_sim/` control API over HTTP and the command-line entry point."""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from pbx_service.simulator import Simulator
from tests.simulator.conftest import Connect


async def test_phones_calls_and_request_log_over_http(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    events = await connect("pbx-service")
    control = sim.control_url
    async with http.put(
        f"{control}/phones/PJSIP/101", json={"answer_after": 0.5, "hangup_after": 1}
    ) as response:
        assert response.status == 200
    async with http.put(f"{control}/phones/PJSIP/102", json={"answers": 1}) as response:
        assert response.status == 400
        assert "unknown phone behaviour field" in (await response.json())["message"]
    async with http.get(f"{control}/phones") as response:
        phones = await response.json()
        assert [p["endpoint"] for p in phones] == ["PJSIP/101"]
    async with http.post(
        f"{control}/calls",
        json={
            "caller_number": "+7916",
            "did": "100",
            "caller_name": "Ivan",
            "steps": [{"wait_answered": 5}, {"dtmf": "5"}, {"wait": 0.5}, {"hangup": True}],
        },
    ) as response:
        assert response.status == 201
        channel_id = (await response.json())["channel_id"]
    async with http.post(
        f"{control}/calls", json={"caller_number": "1", "did": "2", "steps": [{"fly": 1}]}
    ) as response:
        assert response.status == 400
    await events.wait_for("StasisStart", channel__id=channel_id)
    async with http.post(f"{sim.base_url}/channels/{channel_id}/answer") as response:
        assert response.status == 204
    await events.wait_for("StasisEnd", channel__id=channel_id)
    async with http.get(f"{control}/calls/{channel_id}") as response:
        transcript = await response.json()
    assert transcript["ended"] is True
    assert transcript["hungup_by"] == "caller"
    assert [d["digit"] for d in transcript["dtmf_sent"]] == ["5"]
    async with http.get(f"{control}/requests") as response:
        log = await response.json()
    answer = [r for r in log if r["path"].endswith("/answer")]
    assert answer[0]["method"] == "POST" and answer[0]["status"] == 204
    assert sim.requests[-1]["path"] == f"/ari/channels/{channel_id}/answer"
    async with http.get(f"{control}/log") as response:
        assert [e["kind"] for e in await response.json()] == ["inbound"]


async def test_command_line_entry_serves_ari() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pbx_service.simulator",
        "--port",
        "0",
        "--time-scale",
        "0.1",
        "--phone",
        "PJSIP/101=2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line.startswith("ARI simulator at http://127.0.0.1:")
        base = line.split()[3]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base}/endpoints", params={"api_key": "pbx-service:secret"}) as response,
        ):
            assert (await response.json())[0]["resource"] == "101"
    finally:
        process.terminate()
        await process.wait()
