"""The network-cutting proxy: a full cut, and a cut of the events WebSocket alone."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from pbx_service.simulator.proxy import TcpProxy


async def _server() -> tuple[web.AppRunner, str]:
    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ping": "pong"})

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ari/asterisk/ping", ping)
    app.router.add_get("/ari/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/ari"


async def test_cut_events_drops_only_the_websocket_until_restored() -> None:
    runner, url = await _server()
    proxy = TcpProxy(url)
    await proxy.start()
    try:
        async with aiohttp.ClientSession() as session:
            # REST first on the same pool: the WS upgrade may reuse that keep-alive connection.
            async with session.get(proxy.url + "/asterisk/ping") as resp:
                assert resp.status == 200
            ws = await session.ws_connect(proxy.url + "/events?app=x")
            proxy.cut_events()
            msg = await ws.receive(timeout=5)
            assert msg.type in (
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
                aiohttp.WSMsgType.CLOSE,
            )
            async with session.get(proxy.url + "/asterisk/ping") as resp:
                assert resp.status == 200, "REST must keep flowing while only the socket is cut"
            with pytest.raises(aiohttp.ClientError):
                await session.ws_connect(proxy.url + "/events?app=x")
            proxy.restore()
            ws = await session.ws_connect(proxy.url + "/events?app=x")
            assert not ws.closed
            await ws.close()
    finally:
        await proxy.stop()
        await runner.cleanup()
