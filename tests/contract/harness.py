"""Replay a trace recorded from a real Asterisk 22 against the simulator and compare.

For one trace file (``traces/NN_*.jsonl``, format in ``traces/README.md``) the harness:

1. opens the WebSockets the trace opened (``ws_connect``: same app names and query) and closes
   them where the trace closed them;
2. sends the trace's REST requests in trace order (method, path, query, body), after the events
   that preceded each request in the trace have arrived (bounded wait) and paced like the trace
   on a clock scaled by ``time_scale`` (the simulator runs its timers on the same scale);
3. maps ids Asterisk generated in the trace (``<epoch>.<n>`` channel ids, uuids of bridges and
   playbacks) to the ids the simulator generated, by matching responses and events in order of
   appearance, and rewrites later requests that use a trace id;
4. compares: status codes, error bodies (exact ``message``/``error``), response JSON shape (field
   names and value types, plus the values of a few fields that carry behaviour, `VALUE_KEYS`),
   per WebSocket connection the event types in order, and each event's fields the same way.

Parts a simulator cannot reproduce are skipped, all listed in `TRACE_SKIPS`, `SEGMENT_SKIPS`,
`REQUEST_SKIPS` and `IGNORED_KINDS`; `describe_skips` renders them for the test output.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import difflib
import importlib
import inspect
import json
import pathlib
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp

# --------------------------------------------------------------------------------------------
# What is skipped, and why (one place)
# --------------------------------------------------------------------------------------------

IGNORED_KINDS: Mapping[str, str] = {
    "meta": "scenario description only",
    "note": "annotation by the recording client; used only for request latencies",
    "cli": "Asterisk CLI output: the simulator has no CLI",
    "disk": "listings/headers of recording files on the Asterisk host: real media on disk",
    "asterisk_log": "Asterisk log lines: the simulator has no log of that form",
    "ami_connected": "AMI traffic: not ARI",
    "ami_action": "AMI traffic: not ARI",
    "ami_response": "AMI traffic: not ARI",
    "ami_event": "AMI traffic: not ARI",
    "agi_request": "FastAGI traffic: not ARI",
    "agi_command": "FastAGI traffic: not ARI",
}

TRACE_SKIPS: Mapping[str, str] = {
    "08": "AMI and FastAGI: the ARI part only sets up a call in [agi-test] whose behaviour is "
    "driven by the AGI script; the simulator speaks neither AMI nor FastAGI",
    "extra_native_cdr_records": "Asterisk's own CDR records, not an ARI exchange",
    "extra_native_cel_records": "Asterisk's own CEL records, not an ARI exchange",
}

# (trace prefix, first seq, last seq): reason. Requests, WebSocket actions and events in the
# range are neither replayed nor expected.
SEGMENT_SKIPS: Mapping[tuple[str, int, int], str] = {
    ("10", 14, 30): "ari.conf channelvars unset and res_ari reloaded: a configuration change "
    "in the middle of the trace that the simulator cannot mirror",
    ("11", 148, 151): "Custom:agent101 changed from the Asterisk console ('devstate change', a "
    "CLI command the simulator has no equivalent of) and the DeviceStateChanged it caused",
    ("11", 162, 162): "the dialplan's Set(DEVICE_STATE(Custom:agent101)=INUSE) changes the state "
    "only because the console had set BUSY at seq 150 (skipped above); without that change "
    "the simulator's Custom:agent101 is already INUSE and it reports no event for a state that did "
    "not change",
    ("17", 281, 294): "recording into a directory made immutable with chattr +i on the Asterisk "
    "host (a filesystem set-up the simulator cannot be put into); seq 281-283 are the Recorder "
    "joining the bridge for it, logged before the request's response",
    ("17", 314, 336): "path-escape quirks: '../r17-escape' (500, yet a Recorder joins and leaves "
    "the bridge, seq 314-323) and 'sub/../../r17-escape2' written outside the recording "
    "directory (an Asterisk bug; its Recorder joins at seq 324-326)",
}

# (trace prefix, seq): reason. One request not replayed (its response is not compared).
REQUEST_SKIPS: Mapping[tuple[str, int], str] = {
    ("12", 308): "a request racing the caller's hangup: Asterisk accepted it (204) in the few "
    "milliseconds between the hangup and StasisEnd, a window the simulator's instantaneous "
    "hangup does not have",
}

# Per-request changes needed to reproduce what the recording client did but the trace line
# does not show. Keys (trace prefix, seq); "auth" replaces the Basic credentials.
REQUEST_OVERRIDES: Mapping[tuple[str, int], Mapping[str, Any]] = {
    ("05", 127): {"auth": ("ari", "wrong-password")},
}

# Listings whose length depends on the Asterisk host, not on the trace: (method, path) regex.
LIST_LENGTH_FREE: Mapping[str, str] = {
    r"GET /ari/sounds$": "the prompts installed on the recording host",
    r"GET /ari/recordings/stored$": "files left in the spool by earlier traces (04 lists 03's)",
}

# Traces whose calls run concurrently: event order is compared per object (channel, bridge,
# playback), not across the whole connection, since Asterisk interleaves calls freely there.
PER_OBJECT_ORDER: Mapping[str, str] = {
    "14": "three agent legs originated concurrently; their events interleave freely",
    "16": "ten concurrent calls; events of different calls interleave freely",
}

_RACY_STATE_PATH = re.compile(r"/(play|record)(/[^/]+)?$")
_RACY_STATES = frozenset({"queued", "playing", "recording"})

# Fields whose *values* are compared (after id mapping), besides shapes everywhere.
VALUE_KEYS = frozenset(
    {
        "type",
        "state",
        "cause",
        "cause_txt",
        "soft",
        "dialstatus",
        "digit",
        "duration_ms",
        "args",
        "variable",
        "eventname",
        "media_uri",
        "next_media_uri",
        "target_uri",
        "language",
        "technology",
        "bridge_type",
        "bridge_class",
        "format",
        "message",
        "error",
        "value",
    }
)
# Values never compared even under a VALUE_KEYS name (timestamps, generated text).
_FREE_VALUE_PATHS = ("timestamp", "creationtime", "asterisk_id", "entity_id")

DEFAULT_USER = "ari"
DEFAULT_PASSWORD = "ari-secret"

# --------------------------------------------------------------------------------------------
# Trace model
# --------------------------------------------------------------------------------------------

_CHANNEL_ID = r"\d{9,11}\.\d+"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
GENERATED_ID = re.compile(rf"(?<![\w.-])(?:{_CHANNEL_ID}|{_UUID})(?![\w.-])")
_FULL_GENERATED = re.compile(rf"^(?:{_CHANNEL_ID}|{_UUID})$")
# Local/100@from-trunk-0000003b;1 -> the counter differs from run to run.
_CHANNEL_COUNTER = re.compile(r"-[0-9a-f]{8}(?=;\d|,|$)")
_ANNOUNCER_SUFFIX = re.compile(r"(ARI_MOH|ARI)-[0-9a-f-]+?(?=;\d|,|$)")

DEFAULT_LATENCY = 0.001
# Events of different objects emitted closer than this may come in either order (01 and 07
# show the two Local halves' ChannelStateChange Up both ways round).
ORDER_TOLERANCE = 0.0015
# Events logged less than this before a request's response may be that request's own effects.
SOFT_WINDOW = 0.005


def is_generated_id(value: str) -> bool:
    """True for ids Asterisk makes up (``<epoch>.<n>``, uuids), which differ per run."""
    return bool(_FULL_GENERATED.match(value))


def normalize_channel_name(name: str) -> str:
    """Channel names without their per-run counters (``Local/1@ctx-<n>;2``); also inside
    comma-separated lists such as a ``BRIDGEPEER`` value."""
    return _ANNOUNCER_SUFFIX.sub(r"\1-<n>", _CHANNEL_COUNTER.sub("-<n>", name))


@dataclasses.dataclass
class TraceLine:
    """One line of a trace file."""

    seq: int
    t_rel: float
    kind: str
    data: dict[str, Any]


@dataclasses.dataclass
class Trace:
    """A parsed trace file."""

    path: pathlib.Path
    prefix: str
    lines: list[TraceLine]

    @classmethod
    def load(cls, path: pathlib.Path) -> Trace:
        lines: list[TraceLine] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            if not raw.strip():
                continue
            d = json.loads(raw)
            lines.append(TraceLine(int(d["seq"]), float(d["t_rel"]), str(d["kind"]), d))
        return cls(path, trace_prefix(path), lines)

    @property
    def name(self) -> str:
        return self.path.name


def trace_prefix(path: pathlib.Path) -> str:
    """``01`` for ``01_basic_call_playback.jsonl``; the stem for the ``extra_*`` files."""
    stem = path.stem
    head = stem.split("_", 1)[0]
    return head if head.isdigit() else stem


def trace_files(traces_dir: pathlib.Path) -> list[pathlib.Path]:
    """All ``*.jsonl`` files of the reference, sorted."""
    return sorted(traces_dir.glob("*.jsonl"))


def describe_skips(prefix: str | None = None) -> list[str]:
    """Human-readable list of every skipped trace, segment, request and line kind."""
    out: list[str] = []
    for p, reason in TRACE_SKIPS.items():
        if prefix is None or p == prefix:
            out.append(f"trace {p}: skipped entirely: {reason}")
    for (p, first, last), reason in SEGMENT_SKIPS.items():
        if prefix is None or p == prefix:
            out.append(f"trace {p} seq {first}-{last}: {reason}")
    for (p, seq), reason in REQUEST_SKIPS.items():
        if prefix is None or p == prefix:
            out.append(f"trace {p} seq {seq}: request not replayed: {reason}")
    for pattern, reason in LIST_LENGTH_FREE.items():
        out.append(f"length of the listing {pattern!r} not compared: {reason}")
    if prefix is None or prefix not in TRACE_SKIPS:
        for kind, reason in IGNORED_KINDS.items():
            out.append(f"lines of kind {kind!r}: {reason}")
    return out


def _snoop(event: Mapping[str, Any]) -> bool:
    channel = event.get("channel")
    name = channel.get("name") if isinstance(channel, dict) else None
    return isinstance(name, str) and name.startswith("Snoop/")


def _segment_skipped(prefix: str, seq: int) -> str | None:
    for (p, first, last), reason in SEGMENT_SKIPS.items():
        if p == prefix and first <= seq <= last:
            return reason
    return None


# --------------------------------------------------------------------------------------------
# Differences
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Difference:
    """One way the replay differed from the trace."""

    trace: str
    seq: int | None
    where: str
    expected: str
    got: str

    def render(self) -> str:
        at = f"seq {self.seq}" if self.seq is not None else "-"
        return (
            f"{self.trace} {at} {self.where}\n"
            f"    expected: {self.expected}\n"
            f"    got:      {self.got}"
        )


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if value is not None else "null"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Id mapping
# --------------------------------------------------------------------------------------------


class IdMap:
    """Trace id -> replay id for ids Asterisk generated, learned in order of appearance."""

    def __init__(self) -> None:
        self.forward: dict[str, str] = {}
        self.backward: dict[str, str] = {}
        self.changed = asyncio.Event()

    def compatible(self, trace_value: str, replay_value: str) -> bool:
        if not is_generated_id(trace_value):
            return trace_value.lower() == replay_value.lower()
        mapped = self.forward.get(trace_value)
        if mapped is not None:
            return mapped == replay_value
        back = self.backward.get(replay_value)
        return back is None or back == trace_value

    def learn(self, trace_value: str, replay_value: str) -> None:
        if not is_generated_id(trace_value) or trace_value in self.forward:
            return
        if replay_value in self.backward:
            return
        self.forward[trace_value] = replay_value
        self.backward[replay_value] = trace_value
        self.changed.set()

    def rewrite(self, text: str) -> str:
        """Replace every mapped trace id inside `text`."""
        return GENERATED_ID.sub(lambda m: self.forward.get(m.group(0), m.group(0)), text)

    def unmapped(self, text: str) -> list[str]:
        return [m for m in GENERATED_ID.findall(text) if m not in self.forward]

    def to_trace(self, text: str) -> str:
        """Replace replay ids by the trace ids they stand for (for value comparison)."""
        return GENERATED_ID.sub(lambda m: self.backward.get(m.group(0), m.group(0)), text)

    def to_trace_json(self, value: Any) -> Any:
        """`to_trace` applied to a string or to the strings of a list."""
        if isinstance(value, str):
            return self.to_trace(value)
        if isinstance(value, list):
            return [self.to_trace_json(v) for v in value]
        return value


# Where ids sit in ARI objects: (path in the event/response, is the value a channel object).
_ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("id",),
    ("channel", "id"),
    ("peer", "id"),
    ("caller", "id"),
    ("replace_channel", "id"),
    ("bridge", "id"),
    ("playback", "id"),
    ("destination", "id"),
    ("transferer_first_leg", "id"),
    ("transferer_second_leg", "id"),
)
# Compared in the strict matching pass, so that e.g. one ChannelVarset is not taken for another.
_DISCRIMINATORS: tuple[tuple[str, ...], ...] = (
    ("application",),  # a socket for two apps gets each event once per app
    ("args",),
    ("variable",),
    ("dialstatus",),
    ("digit",),
    ("cause",),
    ("channel", "state"),
    ("playback", "state"),
    ("recording", "state"),
    ("recording", "format"),
    ("device_state", "state"),
)
# Also discriminating, compared after id mapping and channel-name normalisation.
_MAPPED_DISCRIMINATORS: tuple[tuple[str, ...], ...] = (
    ("value",),
    ("playback", "target_uri"),
    ("recording", "target_uri"),
)
_NAME_PATHS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("channel", "name"),
    ("peer", "name"),
    ("caller", "name"),
)


def _get(obj: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _id_pairs(expected: Any, got: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for path in _ID_PATHS:
        e, g = _get(expected, path), _get(got, path)
        if isinstance(e, str) and isinstance(g, str):
            pairs.append((e, g))
    for key in ("target_uri",):
        for obj_path in ((), ("playback",), ("recording",)):
            e, g = _get(expected, (*obj_path, key)), _get(got, (*obj_path, key))
            if isinstance(e, str) and isinstance(g, str):
                _, _, e_id = e.partition(":")
                _, _, g_id = g.partition(":")
                if e_id and g_id:
                    pairs.append((e_id, g_id))
    return pairs


def _names_compatible(expected: Any, got: Any) -> bool:
    for path in _NAME_PATHS:
        e, g = _get(expected, path), _get(got, path)
        if isinstance(e, str) and isinstance(g, str) and "/" in e:
            if normalize_channel_name(e) != normalize_channel_name(g):
                return False
    return True


def learn_ids(ids: IdMap, expected: Any, got: Any) -> None:
    """Learn id mappings from a trace object and the corresponding replay object."""
    for e, g in _id_pairs(expected, got):
        ids.learn(e, g)


# --------------------------------------------------------------------------------------------
# Comparison of JSON values
# --------------------------------------------------------------------------------------------


def compare_json(
    expected: Any,
    got: Any,
    ids: IdMap,
    path: str = "",
) -> list[tuple[str, str, str]]:
    """Differences (path, expected, got) in shape and in the values of `VALUE_KEYS`."""
    out: list[tuple[str, str, str]] = []
    te, tg = _type_name(expected), _type_name(got)
    if te != tg:
        out.append((path or "(top)", f"{te} {_short(expected, 80)}", f"{tg} {_short(got, 80)}"))
        return out
    if isinstance(expected, dict) and isinstance(got, dict):
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        if missing:
            out.append((path or "(top)", f"fields {missing}", "missing"))
        if extra:
            out.append((path or "(top)", "absent", f"extra fields {extra}"))
        for key in expected:
            if key not in got:
                continue
            sub = f"{path}.{key}" if path else key
            e, g = expected[key], got[key]
            if (key in VALUE_KEYS and not isinstance(e, dict | list)) or key == "args":
                if not _values_equal(e, g, ids):
                    out.append((sub, _short(e, 120), _short(ids.to_trace_json(g), 120)))
                    continue
            out.extend(compare_json(e, g, ids, sub))
    elif isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            out.append((path or "(top)", f"{len(expected)} items", f"{len(got)} items"))
        keyed = _keyed_items(expected, got, ids)
        if keyed is not None:
            # Listings come in no particular order: pair items by id/name.
            for label, e, g in keyed:
                out.extend(compare_json(e, g, ids, f"{path}[{label}]"))
        elif expected and got:
            out.extend(compare_json(expected[0], got[0], ids, f"{path}[0]"))
    return out


def _keyed_items(
    expected: list[Any], got: list[Any], ids: IdMap
) -> list[tuple[str, Any, Any]] | None:
    if not expected or not got:
        return None
    if not all(isinstance(x, dict) for x in [*expected, *got]):
        return None
    for key in ("id", "name"):
        if all(isinstance(x.get(key), str) for x in [*expected, *got]):
            by_key = {ids.to_trace(str(g[key])): g for g in got}
            pairs = [(str(e[key]), e, by_key[e[key]]) for e in expected if e[key] in by_key]
            return pairs if pairs else [("0", expected[0], got[0])]
    return None


def _values_equal(expected: Any, got: Any, ids: IdMap) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        want: str = expected
        have: str = got
        if "/" in want:
            want, have = normalize_channel_name(want), normalize_channel_name(have)
        if GENERATED_ID.search(want):
            return ids.rewrite(want) == have or want == ids.to_trace(have)
        return want == have
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(
            _values_equal(e, g, ids) for e, g in zip(expected, got, strict=True)
        )
    return bool(expected == got) and _type_name(expected) == _type_name(got)


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ExpectedEvent:
    """One ``ws_event`` line of the trace, and the replay event matched to it."""

    seq: int
    t_rel: float
    ws: str
    event: dict[str, Any]
    matched: dict[str, Any] | None = None
    matched_at: float | None = None
    missing: bool = False


@dataclasses.dataclass
class Received:
    """One event the replay received."""

    event: dict[str, Any]
    at: float
    expected: ExpectedEvent | None = None


@dataclasses.dataclass
class Connection:
    """One replayed WebSocket."""

    label: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    reader: asyncio.Task[None] | None = None
    received: list[Received] = dataclasses.field(default_factory=list)
    expected: list[ExpectedEvent] = dataclasses.field(default_factory=list)
    closed: bool = False


@dataclasses.dataclass
class Action:
    """A step the replay performs: a REST request, or opening/closing a WebSocket."""

    line: TraceLine
    send_est: float  # trace time at which the recording client started the action


class Replay:
    """Replays one trace against a running ARI server at `origin` (``http://host:port``)."""

    def __init__(
        self,
        trace: Trace,
        origin: str,
        *,
        time_scale: float = 1.0,
        grace: float = 0.15,
        # Generous enough for a loaded 2-core CI machine: a late wait costs only time.
        soft_grace: float = 0.1,
        username: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
    ) -> None:
        self.trace = trace
        self.origin = origin.rstrip("/")
        self.scale = time_scale
        self.grace = grace
        self.soft_grace = soft_grace
        # (seq, seconds): how far behind the scaled trace clock the replay fell at worst.
        self.max_lag: tuple[int, float] = (0, 0.0)
        self.username = username
        self.password = password
        self.ids = IdMap()
        self.conns: dict[str, Connection] = {}
        self.differences: list[Difference] = []
        self.info: list[str] = []
        self.arrived = asyncio.Event()
        self._t0 = 0.0
        self._anchor: tuple[float, float] = (0.0, 0.0)  # (trace time, replay time)
        self._events: list[ExpectedEvent] = []

    # -- helpers -------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _diff(self, seq: int | None, where: str, expected: str, got: str) -> None:
        self.differences.append(Difference(self.trace.name, seq, where, expected, got))

    def _auth_header(self, auth: tuple[str, str] | None = None) -> str:
        user, pw = auth or (self.username, self.password)
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    # -- plan ----------------------------------------------------------------------------------

    def _plan(self) -> list[Action]:
        prefix = self.trace.prefix
        actions: list[Action] = []
        closing: set[str] = set()
        lines = self.trace.lines
        for i, line in enumerate(lines):
            if _segment_skipped(prefix, line.seq):
                continue
            kind = line.kind
            if kind == "ws_event":
                ws = str(line.data["ws"])
                ev = ExpectedEvent(line.seq, line.t_rel, ws, line.data["event"])
                self._events.append(ev)
                self.conns.setdefault(ws, Connection(ws)).expected.append(ev)
            elif kind == "rest":
                if (prefix, line.seq) in REQUEST_SKIPS:
                    continue
                latency = _latency_note(lines, i)
                actions.append(Action(line, line.t_rel - latency))
            elif kind == "ws_connect":
                self.conns.setdefault(str(line.data["ws"]), Connection(str(line.data["ws"])))
                actions.append(Action(line, line.t_rel - DEFAULT_LATENCY))
            elif kind in ("ws_closed", "ws_close_requested"):
                ws = str(line.data["ws"])
                if ws not in closing:
                    closing.add(ws)
                    actions.append(Action(line, line.t_rel - DEFAULT_LATENCY))
        return actions

    # -- run -----------------------------------------------------------------------------------

    async def run(self) -> list[Difference]:
        """Replay the whole trace; returns the differences found."""
        actions = self._plan()
        self._t0 = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=max(30.0, 60.0 * self.scale + 10))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                for action in actions:
                    await self._before(action)
                    # Anchor on when the action was sent, not when it returned: our requests
                    # are slower than the recording client's, and that must not add up.
                    sent = (action.send_est, self._now())
                    lag = sent[1] - self.scale * action.send_est
                    if lag > self.max_lag[1]:
                        self.max_lag = (action.line.seq, lag)
                    await self._perform(session, action)
                    self._anchor = sent
                await self._drain_tail()
            finally:
                for conn in self.conns.values():
                    await self._close(conn)
        self._compare_events()
        return self.differences

    async def _before(self, action: Action) -> None:
        # Wait for the events that preceded the action in the trace, bounded in time.
        pending = [
            e
            for e in self._events
            if e.seq < action.line.seq
            and e.t_rel < action.send_est
            and e.matched is None
            and not e.missing
        ]
        if pending:
            # Each event has its own deadline: when it should arrive on the scaled clock, plus
            # a grace. Events within SOFT_WINDOW of the request's response may have been caused
            # by the request itself (sent before the log line), so they get a short grace only.
            t_anchor, r_anchor = self._anchor
            deadlines: dict[int, float] = {}
            for e in pending:
                expected_at = r_anchor + self.scale * max(0.0, e.t_rel - t_anchor)
                soft = action.line.t_rel - e.t_rel < SOFT_WINDOW
                grace = self.soft_grace if soft else self.grace + 0.1 * (expected_at - r_anchor)
                deadlines[e.seq] = max(expected_at, self._now()) + grace
            while True:
                now = self._now()
                late = [
                    e
                    for e in pending
                    if e.matched is None and (deadlines[e.seq] <= now or self._overtaken(e))
                ]
                for e in late:
                    e.missing = True
                if late:
                    self.info.append(
                        f"before seq {action.line.seq}: gave up waiting for "
                        + ", ".join(f"{e.seq} {e.ws} {e.event.get('type')}" for e in late)
                    )
                pending = [e for e in pending if e.matched is None and not e.missing]
                if not pending:
                    break
                left = min(deadlines[e.seq] for e in pending) - now
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), max(left, 0.001))
        # Anchor pacing on the latest matched precursor, else on the previous action.
        anchor = self._anchor
        for e in self._events:
            if (
                e.matched_at is not None
                and e.seq < action.line.seq
                and e.t_rel < action.send_est
                and e.t_rel >= anchor[0]
            ):
                anchor = (e.t_rel, e.matched_at)
        target = anchor[1] + self.scale * max(0.0, action.send_est - anchor[0])
        # Once behind the scaled trace clock (waits that gave up), catch up rather than let
        # the lag grow against the simulator's running timers.
        target = min(target, self.scale * action.send_est)
        delay = target - self._now()
        if delay > 0:
            await asyncio.sleep(delay)

    def _pair_by_alignment(
        self, conn: Connection, exp_tags: list[tuple[str, str]], got_tags: list[tuple[str, str]]
    ) -> None:
        """Re-pair expected and received events for the final comparison: the longest common
        subsequence of (type, object, discriminating fields), then the rest by (type, object)
        in order. Done after the run, it is not misled by a missing event the way the live,
        first-come matching (used for pacing) can be."""
        a = [_token(e.event, t, None) for e, t in zip(conn.expected, exp_tags, strict=True)]
        b = [_token(r.event, t, self.ids) for r, t in zip(conn.received, got_tags, strict=True)]
        for e in conn.expected:
            e.matched = None
        for r in conn.received:
            r.expected = None
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                self._pair(conn.expected[block.a + k], conn.received[block.b + k])
        free = [i for i, r in enumerate(conn.received) if r.expected is None]
        for i, e in enumerate(conn.expected):
            if e.matched is not None:
                continue
            for j in free:
                r = conn.received[j]
                if r.expected is None and b[j][:2] == a[i][:2]:
                    self._pair(e, r)
                    break

    @staticmethod
    def _pair(expected: ExpectedEvent, received: Received) -> None:
        expected.matched = received.event
        received.expected = expected

    def _overtaken(self, event: ExpectedEvent) -> bool:
        # A later event of the same connection already arrived: this one was skipped.
        conn = self.conns.get(event.ws)
        if conn is None:
            return False
        return any(e.matched is not None and e.seq > event.seq for e in conn.expected)

    async def _perform(self, session: aiohttp.ClientSession, action: Action) -> None:
        line = action.line
        if line.kind == "rest":
            await self._rest(session, line)
        elif line.kind == "ws_connect":
            await self._connect(session, line)
        else:
            conn = self.conns.get(str(line.data["ws"]))
            if conn is not None:
                await self._close(conn)

    async def _drain_tail(self) -> None:
        # The events after the last action: wait for them like for a final action.
        last_t = max((e.t_rel for e in self._events), default=0.0)
        fake = TraceLine(10**9, last_t + 0.01, "end", {})
        await self._before(Action(fake, last_t + 0.005))

    # -- WebSockets ----------------------------------------------------------------------------

    async def _connect(self, session: aiohttp.ClientSession, line: TraceLine) -> None:
        label = str(line.data["ws"])
        conn = self.conns.setdefault(label, Connection(label))
        query = {str(k): str(v) for k, v in (line.data.get("query") or {}).items()}
        url = self.origin + str(line.data.get("path", "/ari/events"))
        if query:
            url += "?" + urllib.parse.urlencode(query)
        want_ok = bool(line.data.get("ok", True))
        want_status = line.data.get("status")
        try:
            ws = await session.ws_connect(url, autoping=True, heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            if want_ok or exc.status != want_status:
                self._diff(
                    line.seq, f"ws_connect {label}", f"status {want_status}", f"{exc.status}"
                )
            return
        if not want_ok:
            self._diff(line.seq, f"ws_connect {label}", f"status {want_status}", "101")
            await ws.close()
            return
        conn.ws = ws
        conn.reader = asyncio.create_task(self._read(conn, ws), name=f"contract-ws-{label}")

    async def _read(self, conn: Connection, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                event = json.loads(msg.data)
            except ValueError:
                self._diff(None, f"ws {conn.label}", "JSON event", _short(msg.data))
                continue
            rec = Received(event if isinstance(event, dict) else {"_": event}, self._now())
            conn.received.append(rec)
            self._match(conn, rec)
            self.arrived.set()

    async def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        if conn.ws is not None:
            await conn.ws.close()
        if conn.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(conn.reader, 5)

    def _match(self, conn: Connection, rec: Received) -> None:
        # Strict pass (ids, channel names, discriminating fields), then lenient (ids only).
        for strict in (True, False):
            for exp in conn.expected:
                if exp.matched is not None:
                    continue
                if exp.event.get("type") != rec.event.get("type"):
                    continue
                pairs = _id_pairs(exp.event, rec.event)
                if not all(self.ids.compatible(e, g) for e, g in pairs):
                    continue
                # A generated id seen for the first time is only identified by its name.
                fresh = any(is_generated_id(e) and e not in self.ids.forward for e, _ in pairs)
                if (strict or fresh) and not _names_compatible(exp.event, rec.event):
                    continue
                if strict and any(
                    _get(exp.event, path) != _get(rec.event, path) for path in _DISCRIMINATORS
                ):
                    continue
                if strict and not all(
                    _values_equal(_get(exp.event, path), _get(rec.event, path), self.ids)
                    for path in _MAPPED_DISCRIMINATORS
                ):
                    continue
                exp.matched = rec.event
                exp.matched_at = rec.at
                rec.expected = exp
                learn_ids(self.ids, exp.event, rec.event)
                return

    # -- REST ----------------------------------------------------------------------------------

    async def _rest(self, session: aiohttp.ClientSession, line: TraceLine) -> None:
        d = line.data
        method = str(d["method"])
        raw_path = str(d["path"])
        query = {str(k): str(v) for k, v in (d.get("query") or {}).items()}
        body = d.get("body")
        await self._await_ids(raw_path, query, body, line.t_rel)
        path = self.ids.rewrite(raw_path)
        query = {k: self.ids.rewrite(v) for k, v in query.items()}
        body = _rewrite_json(self.ids, body)
        override = REQUEST_OVERRIDES.get((self.trace.prefix, line.seq), {})
        headers = {"Authorization": self._auth_header(override.get("auth"))}
        url = self.origin + path
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
        where = f"{method} {raw_path}"
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with session.request(method, yarl_url(url), **kwargs) as resp:
                status = resp.status
                content_type = resp.content_type
                payload = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._diff(line.seq, where, f"HTTP {d.get('status')}", f"request failed: {exc!r}")
            return
        self._compare_response(line, where, status, content_type, payload)

    async def _await_ids(
        self, path: str, query: Mapping[str, str], body: Any, t_rel: float
    ) -> None:
        texts = [path, *query.values(), json.dumps(body) if body is not None else ""]
        deadline = self._now() + self.grace
        while True:
            missing = [m for t in texts for m in self.ids.unmapped(t)]
            if not missing or self._now() >= deadline:
                return
            self.ids.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ids.changed.wait(), deadline - self._now())

    def _compare_response(
        self, line: TraceLine, where: str, status: int, content_type: str, payload: bytes
    ) -> None:
        d = line.data
        want_status = int(d["status"])
        if status != want_status:
            got_text = payload.decode("utf-8", "replace")[:200]
            self._diff(
                line.seq,
                where,
                f"HTTP {want_status} {_short(d.get('response'), 200)}",
                f"HTTP {status} {got_text}",
            )
            return
        if "response_binary" in d or "response_text" in d:
            want_ct = str(d.get("content_type", ""))
            if want_ct.split(";")[0] != content_type:
                self._diff(line.seq, where, f"content type {want_ct}", content_type)
            return
        expected = d.get("response")
        got: Any = None
        if payload:
            try:
                got = json.loads(payload)
            except ValueError:
                self._diff(line.seq, where, _short(expected), f"not JSON: {payload[:100]!r}")
                return
        if expected is None:
            if got is not None:
                self._diff(line.seq, where, "empty body", _short(got))
            return
        if isinstance(expected, dict) and set(expected) <= {"message", "error"} and expected:
            if expected != got:
                self._diff(line.seq, where + " error body", _short(expected), _short(got))
            return
        if isinstance(expected, dict) and isinstance(got, dict):
            learn_ids(self.ids, expected, got)
            if d["method"] == "POST" and _RACY_STATE_PATH.search(str(d["path"])):
                # Asterisk answers "queued" or, when its media thread was quicker, already
                # "playing"/"recording" (both seen in the traces): either is right.
                if {expected.get("state"), got.get("state")} <= _RACY_STATES:
                    got = {**got, "state": expected.get("state")}
        if isinstance(expected, list) and isinstance(got, list):
            key = f"{d['method']} {d['path']}"
            if any(re.search(pattern, key) for pattern in LIST_LENGTH_FREE):
                # Compare the items both sides have (by id/name), else the first items' shape.
                keyed = _keyed_items(expected, got, self.ids) or []
                common = [(e, g) for label, e, g in keyed if label != "0"]
                if not common and expected and got:
                    common = [(expected[0], got[0])]
                expected, got = [e for e, _ in common], [g for _, g in common]
        for sub, e, g in compare_json(expected, got, self.ids):
            self._diff(line.seq, f"{where} response {sub}", e, g)

    # -- events --------------------------------------------------------------------------------

    def _compare_events(self) -> None:
        per_object = self.trace.prefix in PER_OBJECT_ORDER
        tags = _TagNamer(self.ids)
        for label, conn in self.conns.items():
            where = f"events on {label}"
            exp_tags = {id(e): tags.trace_tag(e.event) for e in conn.expected}
            got_tags = [tags.replay_tag(r.event) for r in conn.received]
            self._pair_by_alignment(conn, [exp_tags[id(e)] for e in conn.expected], got_tags)
            arrival = {id(r.expected): i for i, r in enumerate(conn.received) if r.expected}

            def show(tag: tuple[str, str]) -> str:
                return f"{tag[0]}({tag[1]})"

            # An object none of whose expected events arrived (typically its id differs) is
            # reported once, not event by event.
            by_tag: dict[str, list[ExpectedEvent]] = {}
            for e in conn.expected:
                by_tag.setdefault(exp_tags[id(e)][1], []).append(e)
            lost_objects = {
                tag
                for tag, evs in by_tag.items()
                if tag != "-" and len(evs) > 2 and all(x.matched is None for x in evs)
            }
            for lost in sorted(lost_objects):
                evs = by_tag[lost]
                self._diff(
                    evs[0].seq,
                    f"{where}: no event at all for {lost}",
                    f"{len(evs)} events: "
                    + " ".join(f"{x.event.get('type')}@{x.seq}" for x in evs),
                    "none (is the object's id or name different?)",
                )
            # Missing events, with the expected neighbours for context.
            for i, e in enumerate(conn.expected):
                if e.matched is not None or exp_tags[id(e)][1] in lost_objects:
                    continue
                before = conn.expected[i - 1] if i else None
                after_ = conn.expected[i + 1] if i + 1 < len(conn.expected) else None
                context = " ".join(
                    f"{show(exp_tags[id(x)])}@{x.seq}" for x in (before, after_) if x is not None
                )
                self._diff(
                    e.seq,
                    f"{where}: missing event",
                    f"{show(exp_tags[id(e)])} (between {context})",
                    "never received",
                )
            # Unexpected events, placed after the last matched one; those of an object the
            # trace never mentions are grouped.
            last_seq: int | None = None
            strangers: dict[str, list[tuple[int | None, Received]]] = {}
            known_tags = set(by_tag)
            for r, tag in zip(conn.received, got_tags, strict=True):
                if r.expected is not None:
                    last_seq = r.expected.seq
                    continue
                if tag[1] not in known_tags and tag[1] != "-":
                    strangers.setdefault(tag[1], []).append((last_seq, r))
                    continue
                self._diff(
                    last_seq,
                    f"{where}: unexpected event",
                    "nothing here" if last_seq is None else f"nothing after seq {last_seq}",
                    f"{show(tag)} {_short(r.event, 160)}",
                )
            for obj, items in strangers.items():
                first_seq, first = items[0]
                name = _get(first.event, ("channel", "name"))
                self._diff(
                    first_seq,
                    f"{where}: events for an object the trace does not have: {obj}"
                    + (f" ({name})" if isinstance(name, str) else ""),
                    "none",
                    " ".join(str(r.event.get("type")) for _, r in items),
                )
            # Order: events of one object keep their order; events of different objects keep
            # theirs unless Asterisk emitted them within ORDER_TOLERANCE (its threads race).
            matched = [e for e in conn.expected if e.matched is not None and id(e) in arrival]
            reported: set[int] = set()
            for j, later in enumerate(matched):
                for earlier in matched[:j]:
                    if arrival[id(earlier)] < arrival[id(later)]:
                        continue
                    same_object = exp_tags[id(earlier)][1] == exp_tags[id(later)][1]
                    far_apart = later.t_rel - earlier.t_rel > ORDER_TOLERANCE
                    if not same_object and (per_object or not far_apart):
                        continue
                    if not same_object and (_snoop(earlier.event) or _snoop(later.event)):
                        # Asterisk ends a snoop channel on its own thread after the target
                        # goes (trace 12: 1-4 ms later, in varying order with other calls'
                        # events); only its order against its own events is meaningful.
                        continue
                    if earlier.event.get("application") != later.event.get("application"):
                        # One socket carrying two apps: Asterisk queues each app's copies
                        # apart (trace 10 delivers all of caller-sim's copies of a hangup
                        # before pbx-service's), so only the order within an app is meaningful,
                        # as between two sockets (traces/README.md).
                        continue
                    if later.seq in reported or earlier.seq in reported:
                        break
                    reported.update((later.seq, earlier.seq))
                    self._diff(
                        later.seq,
                        f"{where}: order",
                        f"{show(exp_tags[id(earlier)])}@{earlier.seq} before "
                        f"{show(exp_tags[id(later)])}@{later.seq}",
                        "the other way round",
                    )
                    break
            # Fields of every matched event.
            for e in conn.expected:
                if e.matched is None:
                    continue
                for sub, want, got in compare_json(e.event, e.matched, self.ids):
                    if sub.split(".")[-1] in _FREE_VALUE_PATHS:
                        continue
                    self._diff(e.seq, f"{where}: {e.event.get('type')} {sub}", want, got)


def _token(event: Mapping[str, Any], tag: tuple[str, str], ids: IdMap | None) -> tuple[str, ...]:
    texts: list[str] = []
    for path in _MAPPED_DISCRIMINATORS:
        value = _get(event, path)
        text = ""
        if isinstance(value, str):
            text = normalize_channel_name(ids.to_trace(value) if ids is not None else value)
        texts.append(text)
    return (
        *tag,
        *(json.dumps(_get(event, path), sort_keys=True) for path in _DISCRIMINATORS),
        *texts,
    )


class _TagNamer:
    """Stable short names (ch1, pb1, br1) for the object an event is about."""

    def __init__(self, ids: IdMap) -> None:
        self.ids = ids
        self.names: dict[str, str] = {}

    def _name(self, trace_id: str, kind: str) -> str:
        if trace_id not in self.names:
            n = sum(1 for v in self.names.values() if v.startswith(kind)) + 1
            self.names[trace_id] = f"{kind}{n}" if is_generated_id(trace_id) else trace_id
        return self.names[trace_id]

    def _object(self, event: Mapping[str, Any]) -> tuple[str, str] | None:
        for key, kind in (
            ("playback", "pb"),
            ("recording", "rec"),
            ("channel", "ch"),
            ("peer", "ch"),
            ("bridge", "br"),
            ("device_state", "dev"),
        ):
            obj = event.get(key)
            if isinstance(obj, dict):
                ident = obj.get("id", obj.get("name"))
                if isinstance(ident, str):
                    return ident, kind
        return None

    def trace_tag(self, event: Mapping[str, Any]) -> tuple[str, str]:
        obj = self._object(event)
        tag = self._name(obj[0], obj[1]) if obj else "-"
        return str(event.get("type")), tag

    def replay_tag(self, event: Mapping[str, Any]) -> tuple[str, str]:
        obj = self._object(event)
        if obj is None:
            return str(event.get("type")), "-"
        ident, kind = obj
        trace_id = self.ids.backward.get(ident, ident)
        if is_generated_id(ident) and ident not in self.ids.backward:
            return str(event.get("type")), f"{kind}?{ident}"
        return str(event.get("type")), self._name(trace_id, kind)


def _latency_note(lines: Sequence[TraceLine], index: int) -> float:
    # The recording client wrote "request latency" notes (elapsed_s) right after some requests.
    for line in lines[index + 1 : index + 4]:
        if line.kind == "note" and "elapsed_s" in line.data:
            return float(line.data["elapsed_s"])
        if line.kind == "rest":
            break
    return DEFAULT_LATENCY


def _rewrite_json(ids: IdMap, value: Any) -> Any:
    if isinstance(value, str):
        return ids.rewrite(value)
    if isinstance(value, list):
        return [_rewrite_json(ids, v) for v in value]
    if isinstance(value, dict):
        return {ids.rewrite(str(k)): _rewrite_json(ids, v) for k, v in value.items()}
    return value


def yarl_url(url: str) -> Any:
    """A URL aiohttp sends as given (the trace's percent-encoding is part of the request)."""
    import yarl

    return yarl.URL(url, encoded=True)


# --------------------------------------------------------------------------------------------
# Simulator lifecycle
# --------------------------------------------------------------------------------------------


def simulator_kwargs(
    factory: Callable[..., Any], time_scale: float, recordings_dir: pathlib.Path | None = None
) -> dict[str, Any]:
    """Keyword arguments `factory` (the Simulator class) accepts, for a trace replay."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    wanted: dict[str, Any] = {
        "time_scale": time_scale,
        "username": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
        # The replay runs on the scaled clock, so originate/dial timeouts must too.
        "scale_client_timeouts": True,
        # Asterisk's transmit_silence quirk: an idle Local half sends no frames (trace 04).
        "local_idle_media": "none",
    }
    if recordings_dir is not None:
        wanted["recordings_dir"] = recordings_dir
    return {k: v for k, v in wanted.items() if k in params}


def find_simulator_class() -> Any:
    """The simulator's ``Simulator`` class, or None while it does not exist yet."""
    for module in ("pbx_service.simulator.server", "pbx_service.simulator"):
        try:
            found = getattr(importlib.import_module(module), "Simulator", None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None


async def replay_on_simulator(trace: Trace, cls: Any, time_scale: float) -> Replay:
    """Start a fresh simulator from `cls`, replay `trace` on it, stop it; returns the replay.

    Pacing follows `time_scale` only when the simulator accepts it, else real time.
    """
    with tempfile.TemporaryDirectory(prefix="pbx-contract-") as tmp:
        kwargs = simulator_kwargs(cls, time_scale, pathlib.Path(tmp) / "recording")
        sim = cls(**kwargs)
        await sim.start("127.0.0.1", port=0)
        try:
            replay = Replay(
                trace, origin_of(sim.base_url), time_scale=kwargs.get("time_scale", 1.0)
            )
            await replay.run()
        finally:
            await sim.stop()
    return replay


def origin_of(base_url: str) -> str:
    """``http://host:port`` of a base URL like ``http://host:port/ari``."""
    parts = urllib.parse.urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def render(differences: Iterable[Difference], info: Iterable[str] = ()) -> str:
    """A readable report of the differences (and of waits that were given up)."""
    out = [d.render() for d in differences]
    notes = list(info)
    if notes:
        out.append("replay notes:")
        out.extend(f"  {n}" for n in notes)
    return "\n".join(out)


async def _main(argv: Sequence[str]) -> int:
    import os
    import sys

    from tests.contract.reference import reference_available, reference_dir

    if not reference_available():
        print(f"no reference at {reference_dir()}", file=sys.stderr)
        return 2
    # PBX_CONTRACT_ARI_ORIGIN=http://127.0.0.1:8088 replays on a real Asterisk (real time)
    # configured like the traces: a check of the harness itself.
    origin = os.environ.get("PBX_CONTRACT_ARI_ORIGIN")
    cls = find_simulator_class()
    if cls is None and not origin:
        print("no Simulator class yet", file=sys.stderr)
        return 2
    scale = float(os.environ.get("PBX_CONTRACT_TIME_SCALE", "0.25"))
    failed = 0
    for path in trace_files(reference_dir() / "traces"):
        prefix = trace_prefix(path)
        if argv and prefix not in argv:
            continue
        if prefix in TRACE_SKIPS:
            print(f"== {path.name}: SKIP ({TRACE_SKIPS[prefix]})")
            continue
        started = time.monotonic()
        if origin:
            replay = Replay(Trace.load(path), origin, time_scale=1.0)
            await replay.run()
        else:
            replay = await replay_on_simulator(Trace.load(path), cls, scale)
        took = time.monotonic() - started
        verdict = "PASS" if not replay.differences else f"FAIL ({len(replay.differences)})"
        print(f"== {path.name}: {verdict} in {took:.1f}s")
        if replay.differences:
            failed += 1
            print(render(replay.differences, replay.info))
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    sys.exit(asyncio.run(_main(sys.argv[1:])))
