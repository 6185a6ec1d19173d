"""The HTTP side: ARI routing and auth, the events WebSocket, the request log, `/_sim/`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from pbx_service.simulator import rest
from pbx_service.simulator.apps import EventSocket
from pbx_service.simulator.engine import AriError, Engine

log = logging.getLogger(__name__)

JSON = "application/json"


def json_response(status: int, body: Any) -> web.Response:
    if body is None:
        return web.Response(status=status)
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON)


class AriServer:
    """Routes `/ari/...` to the REST resources and serves `/ari/events`."""

    def __init__(
        self,
        engine: Engine,
        username: str,
        password: str,
        requests: list[dict[str, Any]],
        request_log_limit: int | None = None,
    ) -> None:
        self.engine = engine
        self.username = username
        self.password = password
        self.requests = requests
        self.request_log_limit = request_log_limit
        self.sockets: set[web.WebSocketResponse] = set()
        self._routes = [(method, path.split("/"), handler) for method, path, handler in rest.ROUTES]

    def _log(self, entry: dict[str, Any]) -> None:
        self.requests.append(entry)
        limit = self.request_log_limit
        if limit is not None and len(self.requests) > limit:
            del self.requests[: len(self.requests) - limit // 2]  # amortised: trim in halves

    # -- auth ------------------------------------------------------------------------------
    def authorized(self, request: web.Request) -> bool:
        api_key = request.query.get("api_key")
        if api_key is not None:
            return api_key == f"{self.username}:{self.password}"
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            return decoded == f"{self.username}:{self.password}"
        return False

    # -- routing ---------------------------------------------------------------------------
    def _match(
        self, method: str, segments: list[str]
    ) -> tuple[rest.Handler | None, dict[str, str], bool]:
        path_found = False
        for route_method, pattern, handler in self._routes:
            if len(pattern) != len(segments):
                continue
            args: dict[str, str] = {}
            for part, segment in zip(pattern, segments, strict=True):
                if part.startswith("{"):
                    if not segment:
                        break
                    args[part[1:-1]] = segment
                elif part != segment:
                    break
            else:
                if route_method == method:
                    return handler, args, True
                path_found = True
        return None, {}, path_found

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?", 1)[0]
        tail = raw[len("/ari/") :] if raw.startswith("/ari/") else ""
        segments = [urllib.parse.unquote(s) for s in tail.rstrip("/").split("/")]
        if segments == ["events"] and request.method == "GET":
            return await self.events(request)
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": request.method,
            "path": "/ari/" + "/".join(segments),
            "query": dict(request.query),
            "body": None,
            "status": None,
        }
        try:
            response = await self._handle(request, segments, entry)
        except Exception:
            log.exception("simulator failed on %s %s", request.method, request.path)
            response = json_response(500, {"message": "Internal Server Error"})
        entry["status"] = response.status
        self._log(entry)
        return response

    async def _handle(
        self, request: web.Request, segments: list[str], entry: dict[str, Any]
    ) -> web.StreamResponse:
        if not self.authorized(request):
            return json_response(401, {"message": "Authentication required"})
        body: Any = None
        if request.can_read_body:
            data = await request.read()
            if data:
                try:
                    body = orjson.loads(data)
                except orjson.JSONDecodeError:
                    return json_response(400, {"message": "Failed to parse body"})
        entry["body"] = body
        handler, args, path_found = self._match(request.method, segments)
        if handler is None:
            if path_found:
                return json_response(405, {"message": "Invalid method"})
            return json_response(404, {"message": "Resource not found"})
        params = {k: v for k, v in request.query.items() if k != "api_key"}
        if isinstance(body, dict):
            for key, value in body.items():
                if key != "variables" and key not in params and not isinstance(value, dict):
                    params[key] = (
                        "true" if value is True else ("false" if value is False else str(value))
                    )
        call = rest.Call(self.engine, params, body, args)
        try:
            result = await handler(call)
        except AriError as exc:
            return json_response(exc.status, exc.body)
        if isinstance(result, web.StreamResponse):
            return result
        status, payload = result
        return json_response(status, payload)

    # -- events WebSocket ------------------------------------------------------------------
    async def events(self, request: web.Request) -> web.StreamResponse:
        entry = {
            "time": time.time(),
            "method": "GET",
            "path": "/ari/events",
            "query": dict(request.query),
            "body": None,
            "status": 101,
        }
        if not self.authorized(request):
            entry["status"] = 401
            self._log(entry)
            return json_response(401, {"message": "Authentication required"})
        apps = [a for a in request.query.get("app", "").split(",") if a]
        if not apps:
            entry["status"] = 400
            self._log(entry)
            return json_response(400, {"message": "Invalid application provided in param [app]."})
        self._log(entry)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        subscribe_all = request.query.get("subscribeAll", "false").lower() in ("true", "1", "yes")
        socket = EventSocket(ws, apps)
        self.engine.apps.attach(socket, subscribe_all)
        self.sockets.add(ws)
        writer = asyncio.create_task(socket.run_writer(), name=f"sim-ws-writer-{apps}")
        try:
            async for message in ws:
                if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.engine.apps.detach(socket)
            socket.close()
            self.sockets.discard(ws)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(writer, 1.0)
            writer.cancel()
            self.engine.collect_apps()
        return ws

    async def close_sockets(self) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close()


ControlHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    server: AriServer, control_routes: list[tuple[str, str, ControlHandler]]
) -> web.Application:
    """The aiohttp application: `/ari/*` plus the simulator's own `/_sim/*`."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    for method, path, handler in control_routes:
        app.router.add_route(method, path, handler)
    app.router.add_route("*", "/ari/{tail:.*}", server.handle)
    return app
