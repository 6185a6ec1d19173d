"""Check an ARI REST request against the official Swagger 1.1 schema (``api-docs/*.json``).

`validate_request` returns a list of problems (empty = valid) for one request: the path must
match a template of the schema, the HTTP method must exist there, required parameters must be
present, no unknown parameter may be sent, values must fit the declared ``dataType`` (int/long,
boolean, string; ``allowMultiple`` lists are comma-separated) and ``allowableValues`` (LIST of
values or RANGE min/max), and a JSON body must be an object whose keys are the operation's body
parameter or (as Asterisk allows) its query parameters.

It is stricter than Asterisk on purpose (Asterisk ignores unknown parameters and accepts
``inuse`` for ``INUSE``): it is meant to check the requests *our* daemon sends.

The schema is loaded from the reference folder (see `tests.contract.reference`); tests calling
`validate_request` skip when the reference is absent.
"""

from __future__ import annotations

import functools
import json
import pathlib
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.contract.reference import require_reference

# Accepted on every request: Asterisk authenticates with it as well as with Basic auth.
_ALWAYS_ALLOWED = frozenset({"api_key"})
_INT_TYPES = frozenset({"int", "long"})


@dataclass(frozen=True)
class Param:
    """One declared parameter of an operation."""

    name: str
    param_type: str  # path | query | body
    data_type: str
    required: bool = False
    allow_multiple: bool = False
    allowed_values: tuple[str, ...] | None = None
    range_min: float | None = None
    range_max: float | None = None


@dataclass(frozen=True)
class Operation:
    """One (path template, HTTP method) pair."""

    method: str
    template: str
    nickname: str
    params: Mapping[str, Param] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSchema:
    """All operations of the ARI schema, indexed by path template."""

    # template -> segments (None for a {param} segment) and method -> Operation
    templates: tuple[tuple[str, tuple[str | None, ...], Mapping[str, Operation]], ...]

    @classmethod
    def load(cls, api_docs: pathlib.Path) -> ApiSchema:
        """Read every ``*.json`` resource file in `api_docs`."""
        entries: list[tuple[str, tuple[str | None, ...], Mapping[str, Operation]]] = []
        for file in sorted(api_docs.glob("*.json")):
            doc = json.loads(file.read_text(encoding="utf-8"))
            for api in doc.get("apis", []):
                ops = api.get("operations")
                if not ops:
                    continue  # resources.json lists the files, not operations
                template = str(api["path"])
                by_method: dict[str, Operation] = {}
                for op in ops:
                    params = {str(p["name"]): _param(p) for p in op.get("parameters", [])}
                    method = str(op["httpMethod"]).upper()
                    by_method[method] = Operation(
                        method, template, str(op.get("nickname", "")), params
                    )
                segments = tuple(
                    None if s.startswith("{") else s for s in template.strip("/").split("/")
                )
                entries.append((template, segments, by_method))
        if not entries:
            raise FileNotFoundError(f"no ARI operations found in {api_docs}")
        return cls(tuple(entries))

    def match(self, path: str) -> tuple[str, Mapping[str, Operation], dict[str, str]] | None:
        """The template matching `path` (``/ari`` prefix optional, still percent-encoded).

        Literal segments win over ``{param}`` segments (``/channels/create`` is not a channel id).
        """
        if path.startswith("/ari/") or path == "/ari":
            path = path[len("/ari") :]
        raw = path.strip("/").split("/")
        best: tuple[int, str, Mapping[str, Operation], dict[str, str]] | None = None
        for template, segments, ops in self.templates:
            if len(segments) != len(raw):
                continue
            literal = 0
            values: dict[str, str] = {}
            names = [s[1:-1] for s in template.strip("/").split("/")]
            ok = True
            for seg, got, name in zip(segments, raw, names, strict=True):
                if seg is None:
                    if not got:
                        ok = False
                        break
                    values[name] = urllib.parse.unquote(got)
                elif seg == got:
                    literal += 1
                else:
                    ok = False
                    break
            if ok and (best is None or literal > best[0]):
                best = (literal, template, ops, values)
        if best is None:
            return None
        return best[1], best[2], best[3]

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation for `method` `path`, or None."""
        found = self.match(path)
        if found is None:
            return None
        return found[1].get(method.upper())

    def validate(
        self, method: str, path: str, query: Mapping[str, str], body: Any = None
    ) -> list[str]:
        """Problems with one request; empty when it conforms to the schema."""
        method = method.upper()
        path = path.split("?", 1)[0]
        found = self.match(path)
        if found is None:
            return [f"{method} {path}: no such path in the ARI schema"]
        template, ops, path_values = found
        op = ops.get(method)
        if op is None:
            allowed = ", ".join(sorted(ops))
            return [f"{method} {template}: method not allowed (schema has {allowed})"]
        where = f"{method} {template}"
        problems: list[str] = []
        for name, value in path_values.items():
            p = op.params.get(name)
            if p is not None:
                problems.extend(_check_value(where, p, value))

        supplied: dict[str, Any] = dict(query)
        body_param = next((p for p in op.params.values() if p.param_type == "body"), None)
        if body is not None:
            if not isinstance(body, dict):
                problems.append(f"{where}: JSON body must be an object, got {type(body).__name__}")
            elif body_param is not None and body_param.data_type == "object":
                pass  # the whole body is the value (PUT /applications/{app}/eventFilter)
            else:
                for key, value in body.items():
                    if body_param is not None and key == body_param.name:
                        problems.extend(_check_body(where, body_param, value))
                    elif key in op.params and op.params[key].param_type == "query":
                        if key in supplied:
                            problems.append(f"{where}: {key!r} given both in query and body")
                        supplied[key] = value
                    else:
                        problems.append(f"{where}: unknown body field {key!r}")
        for name, value in supplied.items():
            p = op.params.get(name)
            if p is None or p.param_type != "query":
                if name in _ALWAYS_ALLOWED:
                    continue
                known = sorted(n for n, q in op.params.items() if q.param_type == "query")
                problems.append(
                    f"{where}: unknown query parameter {name!r} (known: {', '.join(known)})"
                )
                continue
            problems.extend(_check_value(where, p, value))
        for p in op.params.values():
            if not p.required or p.param_type == "path":
                continue
            if p.param_type == "body":
                if p.data_type == "object":
                    if not isinstance(body, dict):
                        problems.append(f"{where}: required JSON body missing")
                elif not isinstance(body, dict) or p.name not in body:
                    problems.append(f"{where}: required body field {p.name!r} missing")
            elif p.name not in supplied:
                problems.append(f"{where}: required query parameter {p.name!r} missing")
        return problems


def _param(p: Mapping[str, Any]) -> Param:
    av = p.get("allowableValues") or {}
    values: tuple[str, ...] | None = None
    rmin: float | None = None
    rmax: float | None = None
    if str(av.get("valueType", "")).upper() == "LIST":
        values = tuple(str(v) for v in av.get("values", []))
    elif str(av.get("valueType", "")).upper() == "RANGE":
        rmin = float(av["min"]) if "min" in av else None
        rmax = float(av["max"]) if "max" in av else None
    return Param(
        name=str(p["name"]),
        param_type=str(p["paramType"]),
        data_type=str(p["dataType"]),
        required=bool(p.get("required", False)),
        allow_multiple=bool(p.get("allowMultiple", False)),
        allowed_values=values,
        range_min=rmin,
        range_max=rmax,
    )


def _check_value(where: str, p: Param, value: Any) -> list[str]:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return [f"{where}: parameter {p.name!r} must be a string, got {type(value).__name__}"]
    items: Sequence[str] = value.split(",") if p.allow_multiple else [value]
    problems: list[str] = []
    for item in items:
        if p.data_type in _INT_TYPES:
            try:
                number = int(item)
            except ValueError:
                problems.append(f"{where}: parameter {p.name!r}={item!r} is not an integer")
                continue
            if p.range_min is not None and number < p.range_min:
                problems.append(f"{where}: parameter {p.name!r}={number} below {p.range_min:g}")
            if p.range_max is not None and number > p.range_max:
                problems.append(f"{where}: parameter {p.name!r}={number} above {p.range_max:g}")
        elif p.data_type == "boolean":
            if item not in ("true", "false"):
                problems.append(f"{where}: parameter {p.name!r}={item!r} is not true/false")
        if p.allowed_values is not None and item not in p.allowed_values:
            problems.append(
                f"{where}: parameter {p.name!r}={item!r} not one of {', '.join(p.allowed_values)}"
            )
    return problems


def _check_body(where: str, p: Param, value: Any) -> list[str]:
    # "containers" is a string map whose values may be {"value": str, "report_events": bool}.
    if p.data_type == "containers":
        if not isinstance(value, dict):
            return [f"{where}: body field {p.name!r} must be an object"]
        problems: list[str] = []
        for key, v in value.items():
            if isinstance(v, str):
                continue
            if (
                isinstance(v, dict)
                and isinstance(v.get("value", ""), str)
                and set(v)
                <= {
                    "value",
                    "report_events",
                }
            ):
                if "report_events" in v and not isinstance(v["report_events"], bool):
                    problems.append(f"{where}: {p.name}.{key}.report_events must be a boolean")
                continue
            problems.append(f"{where}: {p.name}.{key} must be a string or {{value, report_events}}")
        return problems
    return []


@functools.cache
def _schema_at(api_docs: pathlib.Path) -> ApiSchema:
    return ApiSchema.load(api_docs)


def default_schema() -> ApiSchema:
    """The schema from the reference folder; skips the calling test when it is absent."""
    return _schema_at(require_reference() / "api-docs")


def validate_request(
    method: str, path: str, query: Mapping[str, str], body: Any = None
) -> list[str]:
    """Problems with one ARI request (empty list = valid). See the module docstring.

    `path` is the request path, with or without the ``/ari`` prefix, still percent-encoded;
    `query` the decoded query parameters; `body` the parsed JSON body or None.
    """
    return default_schema().validate(method, path, query, body)


def validate_logged_requests(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems with every request of a request log such as the simulator's ``sim.requests``
    (dicts with ``method``, ``path``, ``query``, ``body``); each problem names its request."""
    problems: list[str] = []
    for n, entry in enumerate(entries):
        method = str(entry.get("method", ""))
        path = str(entry.get("path", ""))
        query = {str(k): str(v) for k, v in (entry.get("query") or {}).items()}
        for problem in validate_request(method, _reencode(path), query, entry.get("body")):
            problems.append(f"request #{n} ({method} {path}): {problem}")
    return problems


def _reencode(path: str) -> str:
    # Logs may hold decoded paths; keep them matchable segment by segment.
    return "/".join(urllib.parse.quote(seg, safe="@:;,=+$!*'()~") for seg in path.split("/"))
