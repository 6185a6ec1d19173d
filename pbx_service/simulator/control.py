"""`/_sim/` control endpoints (JSON, no auth) for tests and demos.

GET  /_sim/requests                      the REST request log (method, path, query, body, status)
DELETE /_sim/requests                    clear it
GET  /_sim/phones                        registered phones with behaviour and call log
PUT  /_sim/phones/{tech}/{resource}      body: PhoneBehaviour fields -> register / change
DELETE /_sim/phones/{tech}/{resource}    unregister
POST /_sim/calls                         body: {"caller_number", "did", "caller_name"?,
                                         "steps": [...]} -> 201 {"channel_id", ...}
GET  /_sim/calls                         all scripted calls' transcripts
GET  /_sim/calls/{channel_id}            one transcript (`ended`: bool)
GET  /_sim/log                           call log: inbound calls, fallbacks, voicemails
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from pbx_service.simulator.phones import PhoneBehaviour, PhoneConfigError
from pbx_service.simulator.scripted import ScriptError, parse_step

if TYPE_CHECKING:
    from pbx_service.simulator import Simulator


def _json(status: int, body: Any) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body, default=_default), content_type="application/json"
    )


def _default(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if to_json is not None:
        return to_json()
    raise TypeError(type(value).__name__)


async def _body(request: web.Request) -> Any:
    data = await request.read()
    if not data:
        return {}
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc


def control_routes(sim: Simulator) -> list[tuple[str, str, Any]]:
    """The `/_sim/` routes bound to one simulator."""

    async def get_requests(request: web.Request) -> web.Response:
        return _json(200, sim.requests)

    async def clear_requests(request: web.Request) -> web.Response:
        sim.requests.clear()
        return _json(200, [])

    async def get_phones(request: web.Request) -> web.Response:
        return _json(
            200,
            [
                {
                    "endpoint": p.endpoint,
                    "state": p.state,
                    "behaviour": p.behaviour.to_json(),
                    "calls": p.calls,
                }
                for p in sim.engine.phones.values()
            ],
        )

    async def put_phone(request: web.Request) -> web.Response:
        endpoint = f"{request.match_info['tech']}/{request.match_info['resource']}"
        body = await _body(request)
        if not isinstance(body, dict):
            return _json(400, {"message": "body must be a JSON object of behaviour fields"})
        try:
            behaviour = PhoneBehaviour.from_json(body)
            sim.add_phone(endpoint, behaviour)
        except PhoneConfigError as exc:
            return _json(400, {"message": str(exc)})
        return _json(200, {"endpoint": endpoint, "behaviour": behaviour.to_json()})

    async def delete_phone(request: web.Request) -> web.Response:
        endpoint = f"{request.match_info['tech']}/{request.match_info['resource']}"
        if not sim.remove_phone(endpoint):
            return _json(404, {"message": f"no phone {endpoint}"})
        return web.Response(status=204)

    async def post_call(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict) or "caller_number" not in body or "did" not in body:
            return _json(400, {"message": "body needs caller_number and did"})
        try:
            steps = [parse_step(step) for step in body.get("steps", [])]
        except ScriptError as exc:
            return _json(400, {"message": str(exc)})
        handle = await sim.place_call(
            str(body["caller_number"]),
            str(body["did"]),
            caller_name=body.get("caller_name"),
            steps=steps,
        )
        return _json(
            201, {"channel_id": handle.channel_id, "channel_name": handle.transcript.channel_name}
        )

    async def list_calls(request: web.Request) -> web.Response:
        return _json(
            200, [{**h.transcript.to_json(), "ended": h.ended.done()} for h in sim.calls.values()]
        )

    async def get_call(request: web.Request) -> web.Response:
        handle = sim.calls.get(request.match_info["channel_id"])
        if handle is None:
            return _json(404, {"message": "no such scripted call"})
        return _json(200, {**handle.transcript.to_json(), "ended": handle.ended.done()})

    async def get_log(request: web.Request) -> web.Response:
        return _json(200, sim.engine.call_log)

    return [
        ("GET", "/_sim/requests", get_requests),
        ("DELETE", "/_sim/requests", clear_requests),
        ("GET", "/_sim/phones", get_phones),
        ("PUT", "/_sim/phones/{tech}/{resource}", put_phone),
        ("DELETE", "/_sim/phones/{tech}/{resource}", delete_phone),
        ("POST", "/_sim/calls", post_call),
        ("GET", "/_sim/calls", list_calls),
        ("GET", "/_sim/calls/{channel_id}", get_call),
        ("GET", "/_sim/log", get_log),
    ]
