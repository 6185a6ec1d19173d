"""Channel state: the ARI Channel model, ids and names, variables and the control queue.

A channel in Stasis has a control queue like Asterisk's: commands run one at a time, so a
playback holds back what is queued after it (behaviour 7 of the traces README).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pbx_service.simulator.events import timestamp

if TYPE_CHECKING:
    from pbx_service.simulator.bridges import Bridge
    from pbx_service.simulator.media import LiveRecording, Playback
    from pbx_service.simulator.scripted import Transcript

_CALLERID_RE = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<]*?))\s*<([^>]*)>\s*$')


def parse_callerid(text: str) -> tuple[str, str]:
    """Split `Name <num>` / `"Quoted \\"Name\\"" <num>` / `num` into (name, number)."""
    match = _CALLERID_RE.match(text)
    if match is None:
        stripped = text.strip()
        # A bare value is a number when it looks like one, a name otherwise (ast_callerid_parse).
        if re.fullmatch(r"[+0-9*#]*", stripped):
            return "", stripped
        return stripped, ""
    quoted, plain, number = match.groups()
    if quoted is not None:
        name = re.sub(r"\\(.)", r"\1", quoted)
    else:
        name = (plain or "").strip()
    return name, number.strip()


def format_callerid(name: str, number: str) -> str:
    """`CALLERID(all)` as Asterisk formats it: `"Name" <num>`."""
    if name and number:
        return f'"{name}" <{number}>'
    if number:
        return f"<{number}>"
    return f'"{name}"' if name else ""


@dataclasses.dataclass
class Party:
    """Caller or connected-line identity."""

    name: str = ""
    number: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "number": self.number}


class ChannelGone(Exception):
    """The channel hung up or left Stasis while a queued command waited."""


@dataclasses.dataclass
class ControlCommand:
    run: Callable[[], Awaitable[None]]
    done: asyncio.Future[None]


class CommandQueue:
    """Commands for one channel (or bridge announcer) run one at a time, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[ControlCommand] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.running = False

    def enqueue(self, run: Callable[[], Awaitable[None]]) -> asyncio.Future[None]:
        """Queue a command; the returned future resolves when it has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put_nowait(ControlCommand(run, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work(), name=self.name)
        return future

    @property
    def busy(self) -> bool:
        return self.running or not self._queue.empty()

    async def _work(self) -> None:
        while not self._queue.empty():
            command = self._queue.get_nowait()
            self.running = True
            try:
                await command.run()
            except asyncio.CancelledError:
                if not command.done.done():
                    command.done.set_exception(ChannelGone(self.name))
                    suppress_gone(command.done)
                raise
            except Exception as exc:
                if not command.done.done():
                    command.done.set_exception(exc)
                continue
            finally:
                self.running = False
            if not command.done.done():
                command.done.set_result(None)

    def flush(self, reason: str) -> None:
        """Fail every queued command (hangup / leaving Stasis)."""
        while not self._queue.empty():
            command = self._queue.get_nowait()
            if not command.done.done():
                command.done.set_exception(ChannelGone(reason))
                suppress_gone(command.done)

    def stop(self) -> None:
        self.flush("stopped")
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._worker = None


class Channel:
    """One simulated Asterisk channel."""

    def __init__(
        self,
        *,
        channel_id: str,
        name: str,
        tech: str,
        state: str,
        context: str,
        exten: str,
        language: str = "en",
        channelvar_names: tuple[str, ...] = (),
    ) -> None:
        self.id = channel_id
        self.name = name
        self.tech = tech
        self.state = state
        self.caller = Party()
        self.connected = Party()
        self.context = context
        self.exten = exten
        self.priority = 1
        self.app_name = ""
        self.app_data = ""
        self.created_at = time.time()
        self.creationtime = timestamp(self.created_at)
        self.language = language
        self.linkedid = channel_id
        self.variables: dict[str, str] = {}
        self.inheritable: set[str] = set()
        self.channelvar_names = list(channelvar_names)
        # app name -> True when the subscription outlives Stasis (originate / create).
        self.subscribers: dict[str, bool] = {}
        self.peer: Channel | None = None  # the other half of a Local channel
        self.half = 0  # 1 or 2 for Local halves
        self.explicit_id = False  # channelId was given by the client
        self.snoop_target: Channel | None = None
        self.snoop_spy = ""
        self.stasis_app: str | None = None
        self.stasis_args: list[str] = []
        self.runs_dialplan = False
        self.dialplan_has_h = False
        self.bridge: Bridge | None = None
        self.bridge_role = ""
        self.playback: Playback | None = None
        self.pending_playbacks: list[Playback] = []
        self.recording: LiveRecording | None = None
        self.hangup_cause = 16
        self.hanging_up = False
        self.destroyed = False
        self.answered = asyncio.Event()
        self.gone = asyncio.Event()
        self.left_stasis = asyncio.Event()
        self.dialing: Any = None  # pending originate/dial state (engine-owned)
        self.transcript: Transcript | None = None
        self.continue_target: tuple[str, str, int] | None = None
        self.on_destroyed: list[Callable[[], None]] = []
        # A Local half's caller id updated from its partner's connected line while bridged;
        # Asterisk reports it (ChannelCallerId) only when the half hangs up.
        self.pending_caller: Party | None = None
        # Dialplan functions that need the whole PBX (DEVICE_STATE, ...), set by the engine.
        self.functions: dict[str, Callable[[str], str]] = {}
        self.phone_endpoint: str | None = None
        self.talking = False
        self.moh = False
        self.silence = False
        self.hold = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.control = CommandQueue(f"sim-control-{channel_id}")

    # -- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ARI Channel model."""
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": "",
            "caller": self.caller.to_json(),
            "connected": self.connected.to_json(),
            "accountcode": "",
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": self.app_name,
                "app_data": self.app_data,
            },
            "creationtime": self.creationtime,
            "language": self.language,
        }
        if self.channelvar_names:
            body["channelvars"] = {
                key: value
                for key in self.channelvar_names
                if (value := self.read_for_channelvars(key)) is not None
            }
        return body

    def read_for_channelvars(self, key: str) -> str | None:
        try:
            value = self.read_variable(key)
        except LookupError:
            return ""
        except ValueError:
            return ""
        if value is not None and len(value.encode()) > 255:
            return None
        return value if value is not None else ""

    # -- variables and functions ---------------------------------------------------------
    def read_variable(self, name: str) -> str | None:
        """Read a variable or dialplan function.

        Returns None for an unset variable; raises ValueError for an unknown function.
        """
        func = re.fullmatch(r"([A-Z_]+)\((.*)\)", name)
        if func is None:
            return self.variables.get(name)
        fname, arg = func.group(1), func.group(2)
        if fname == "CALLERID":
            # Reads see a caller id not yet reported in snapshots (trace 13, case B).
            return _party_field(self.pending_caller or self.caller, arg)
        if fname == "CONNECTEDLINE":
            return _party_field(self.connected, arg)
        if fname == "CHANNEL":
            values = {
                "language": self.language,
                "uniqueid": self.id,
                "linkedid": self.linkedid,
                "name": self.name,
                "state": self.state,
                "context": self.context,
                "exten": self.exten,
                "channeltype": self.tech,
                "musicclass": "",
                "accountcode": "",
                "peeraccount": "",
                "userfield": "",
                "amaflags": "DOCUMENTATION",
            }
            if arg in values:
                return values[arg]
            raise ValueError(name)
        if fname == "LEN":
            return str(len(arg))
        if fname in self.functions:
            return self.functions[fname](arg)
        raise ValueError(name)

    def pseudo_variable(self, name: str) -> str | None:
        """Builtin dialplan variables Asterisk resolves on read (EXTEN, CONTEXT, ...)."""
        values = {
            "EXTEN": self.exten,
            "CONTEXT": self.context,
            "PRIORITY": str(self.priority),
            "UNIQUEID": self.id,
            "CHANNEL": self.name,
            "LANGUAGE": self.language,
        }
        return values.get(name)

    def inheritable_variables(self) -> dict[str, str]:
        return {key: self.variables[key] for key in self.inheritable if key in self.variables}

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def cancel_tasks(self, *, keep: asyncio.Task[Any] | None = None) -> None:
        for task in list(self.tasks):
            if task is not keep and not task.done():
                task.cancel()


def _party_field(party: Party, arg: str) -> str:
    arg = arg.lower()
    if arg in ("name",):
        return party.name
    if arg in ("num", "number"):
        return party.number
    if arg == "all":
        return format_callerid(party.name, party.number)
    raise ValueError(arg)


class ChannelRegistry:
    """Live channels: unique ids (`<epoch>.<n>`), names, the prefix rule of behaviour 14."""

    def __init__(self) -> None:
        self._epoch = int(time.time())
        self._next_id = 1
        self._next_name = 1
        self.by_id: dict[str, Channel] = {}
        # Lower-cased ids, by key and sorted: lookups and prefix checks without a scan (a load
        # run holds thousands of channels).
        self._by_lowered: dict[str, Channel] = {}
        self._sorted_lowered: list[str] = []

    def new_id(self) -> str:
        channel_id = f"{self._epoch}.{self._next_id}"
        self._next_id += 1
        return channel_id

    def name_suffix(self) -> str:
        suffix = f"{self._next_name:08x}"
        self._next_name += 1
        return suffix

    def id_in_use(self, candidate: str) -> bool:
        """A requested id collides when it is a case-insensitive prefix of a live id."""
        lowered = candidate.lower()
        ids = self._sorted_lowered
        at = bisect.bisect_left(ids, lowered)
        return at < len(ids) and ids[at].startswith(lowered)

    def get(self, channel_id: str) -> Channel | None:
        found = self.by_id.get(channel_id)
        if found is not None:
            return found
        return self._by_lowered.get(channel_id.lower())

    def add(self, channel: Channel) -> None:
        self.by_id[channel.id] = channel
        lowered = channel.id.lower()
        if lowered not in self._by_lowered:
            bisect.insort(self._sorted_lowered, lowered)
        self._by_lowered[lowered] = channel

    def remove(self, channel: Channel) -> None:
        if self.by_id.pop(channel.id, None) is None:
            return
        lowered = channel.id.lower()
        self._by_lowered.pop(lowered, None)
        ids = self._sorted_lowered
        at = bisect.bisect_left(ids, lowered)
        if at < len(ids) and ids[at] == lowered:
            del ids[at]

    def __iter__(self) -> Any:
        return iter(list(self.by_id.values()))


def suppress_gone(future: asyncio.Future[None]) -> None:
    """Mark a fire-and-forget command's failure as seen."""

    def _done(done: asyncio.Future[None]) -> None:
        with contextlib.suppress(BaseException):
            done.exception()

    future.add_done_callback(_done)
