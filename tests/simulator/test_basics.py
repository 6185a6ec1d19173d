"""Auth, unknown paths, applications and the events socket."""

from __future__ import annotations

import aiohttp

from pbx_service.simulator import Simulator
from tests.simulator.conftest import Connect


async def test_unauthenticated_request_gets_401_body(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sim.base_url}/asterisk/info") as response:
            assert response.status == 401
            assert await response.json() == {"message": "Authentication required"}
        async with session.get(
            f"{sim.base_url}/asterisk/ping", params={"api_key": "pbx-service:secret"}
        ) as response:
            assert response.status == 200
            assert (await response.json())["ping"] == "pong"


async def test_unknown_path_and_method(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.base_url}/no-such-resource") as response:
        assert response.status == 404
        assert await response.json() == {"message": "Resource not found"}
    async with http.put(f"{sim.base_url}/channels") as response:
        assert response.status == 405
        assert await response.json() == {"message": "Invalid method"}
    async with http.get(f"{sim.base_url}/channels/nope") as response:
        assert response.status == 404
        assert await response.json() == {"message": "Channel not found"}


async def test_applications_listing_and_replacement(
    sim: Simulator, http: aiohttp.ClientSession, connect: Connect
) -> None:
    first = await connect("pbx-service")
    async with http.get(f"{sim.base_url}/applications/pbx-service") as response:
        assert response.status == 200
        body = await response.json()
        assert body["name"] == "pbx-service" and body["channel_ids"] == []
    await connect("pbx-service")
    replaced = await first.wait_for("ApplicationReplaced")
    assert replaced["application"] == "pbx-service"
    async with http.get(f"{sim.base_url}/applications/nope") as response:
        assert response.status == 404
        assert await response.json() == {"message": "Application not found"}


async def test_websocket_handshake_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with aiohttp.ClientSession() as anonymous:
        try:
            await anonymous.ws_connect(f"{sim.base_url}/events?app=x&api_key=bad:creds")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 401
        else:
            raise AssertionError("handshake with bad credentials succeeded")
    try:
        await http.ws_connect(f"{sim.base_url}/events?api_key=pbx-service:secret")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 400
    else:
        raise AssertionError("handshake without app succeeded")
    assert sim.requests[-1]["status"] == 400
