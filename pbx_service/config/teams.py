"""Agents, teams, duty rotas and overflow, as they appear in the YAML config.

Agents are people with a phone; teams ring agents. The keys::

    agents:                              # agent id -> who and where to ring
      ivanov: {name: Ivan Ivanov, endpoint: PJSIP/101, extension: "101"}
      petrov: {name: Pyotr Petrov, endpoint: Local/102@agents}
      sidorov: {name: Sidor Sidorov, endpoint: PJSIP/+74951234567@trunk}
    teams:
      reception:                         # the simple form still works: dial strings only
        members: [PJSIP/201, PJSIP/202]
        ring_timeout: 20
      sales:
        members: [ivanov, petrov, sidorov]   # agent ids or dial strings
        strategy: longest_idle   # ring_all, round_robin, longest_idle, fewest_calls_today
        ring_timeout: 15                 # seconds per attempt
        max_wait: 300                    # seconds in the queue before the overflow
        wrap_up: 30                      # seconds after a call before the next one is offered
        hold_music: sales                # music-on-hold class; default: flow.hold_music
        announce_position_every: 60      # seconds; 0 = never
        overflow: {team: reception}      # or {voicemail: sales} or {callback_offer: true}
        rota:
          timezone: Europe/Moscow
          shifts:
            - {agents: [ivanov, petrov], days: mon-fri, hours: "09:00-18:00"}
            - {agents: [sidorov], days: sat-sun, hours: ["10:00-16:00"]}
        fallback_members: [PJSIP/200]    # on duty whenever the rota gives nobody

Who is on duty: without a ``rota`` every member always is; with one, the agents of every shift
running at that instant (``members`` is then the team's roster, not rung by itself), and when no
shift runs, ``fallback_members``. Shift ``days`` and ``hours`` follow the business-hours
conventions of `pbx_service.config.hours` (``mon-fri``, ``sat,sun``; ``"HH:MM-HH:MM"``, a
period ending before it starts runs past midnight and belongs to the day it starts on; daylight
saving time is handled the same way).

A plain dial string in ``members``, ``fallback_members`` or a shift is an agent of its own whose
id is the dial string. An agent may be in several teams (one person often covers two queues in a
small company); state such as "in a call" is per agent, so they are still never offered two
calls at once. A declared agent's phone must be named by the agent id, not its dial string, so
one phone is always one agent.

``overflow`` says where a caller goes when ``max_wait`` passes or nobody is on duty: another
team (whose own overflow then applies), a voicemail box, or the offer "press 1 to be called
back and keep your place". Without it the caller goes to the flow's voicemail. Overflow chains
between teams must end: a loop (A to B to A) is an error.

Only `check_staff` needs the whole picture (agents and every team); the root ``Config`` calls it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pbx_service.config.hours import ENDPOINT_RE, DayPeriods, Period, Schedule, parse_days

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EXTENSION_RE = re.compile(r"^[0-9]{1,20}$")
VOICEMAIL_BOX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
_MEMBER_HINT = "write an agent id from agents: (such as ivanov) or a dial string such as PJSIP/101"

Strategy = Literal["ring_all", "round_robin", "longest_idle", "fewest_calls_today"]
STRATEGIES: tuple[Strategy, ...] = ("ring_all", "round_robin", "longest_idle", "fewest_calls_today")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_dial_string(ref: str) -> bool:
    """Whether a member reference is a dial string (TECH/resource) rather than an agent id."""
    return bool(ENDPOINT_RE.match(ref))


class Agent(_Strict):
    """One person who answers calls."""

    name: str | None = Field(None, description="Shown in reports; default: the agent id.")
    endpoint: str = Field(
        description="Dial string: PJSIP/101, Local/101@agents, PJSIP/+74951234567@trunk."
    )
    extension: str | None = Field(
        None, description="The agent's own extension, for presence codes (log in, pause)."
    )

    @field_validator("endpoint")
    @classmethod
    def _dial_string(cls, value: str) -> str:
        if not is_dial_string(value):
            raise ValueError(
                f"{value!r} is not a dial string; write TECH/resource such as PJSIP/101"
            )
        return value

    @field_validator("extension", mode="before")
    @classmethod
    def _extension_digits(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads extension: 101 as a number
        if isinstance(value, str) and not EXTENSION_RE.match(value):
            raise ValueError(f'{value!r} is not an extension; write digits such as "101"')
        return value


def _member_list(value: list[str]) -> list[str]:
    for ref in value:
        if not (is_dial_string(ref) or AGENT_ID_RE.match(ref)):
            raise ValueError(f"{ref!r} is neither an agent id nor a dial string; {_MEMBER_HINT}")
    seen: set[str] = set()
    for ref in value:
        if ref in seen:
            raise ValueError(f"lists {ref!r} twice; keep one entry")
        seen.add(ref)
    return value


def _one_or_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


MemberList = Annotated[list[str], BeforeValidator(_one_or_list)]


class Shift(_Strict):
    """Who is on duty on which days and hours (wall clock in the rota's time zone)."""

    agents: Annotated[list[str], BeforeValidator(_one_or_list)] = Field(
        min_length=1, description="Agent ids (or dial strings) on duty during this shift."
    )
    days: str = Field(description='Weekdays: "mon-fri", "sat,sun", "mon".')
    hours: Annotated[DayPeriods, BeforeValidator(_one_or_list)] = Field(
        min_length=1, description='"HH:MM-HH:MM" or a list of them; "22:00-08:00" runs overnight.'
    )

    @field_validator("agents")
    @classmethod
    def _agents(cls, value: list[str]) -> list[str]:
        return _member_list(value)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, str):
            parse_days(value)
        return value

    def weekdays(self) -> list[int]:
        """Monday=0 .. Sunday=6."""
        return sorted(set(parse_days(self.days)))


def _schedule(timezone: str, weekly: Mapping[str, Sequence[Period]]) -> Schedule:
    """A business-hours `Schedule`; its first error as a ValueError (for our key paths)."""
    try:
        return Schedule.model_validate({"timezone": timezone, "weekly": dict(weekly)})
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


class Rota(_Strict):
    """A duty rota: shifts in one time zone."""

    timezone: str = Field(description="IANA time zone name of the shift hours, e.g. Europe/Moscow.")
    shifts: list[Shift] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _schedule(value, {}).timezone

    @model_validator(mode="after")
    def _shift_weeks(self) -> Rota:
        self.schedules()
        return self

    def schedules(self) -> tuple[Schedule, ...]:
        """One business-hours schedule per shift, in the order of ``shifts``."""
        out = []
        for n, shift in enumerate(self.shifts):
            try:
                out.append(_schedule(self.timezone, {shift.days: list(shift.hours)}))
            except ValueError as exc:
                raise ValueError(f"shifts[{n}]: {exc}") from None
        return tuple(out)

    def agents(self) -> list[str]:
        """Everyone named by some shift, in order of first mention."""
        return list(dict.fromkeys(ref for shift in self.shifts for ref in shift.agents))


class Overflow(_Strict):
    """Where a caller goes when ``max_wait`` passes or nobody is on duty; exactly one key."""

    team: str | None = Field(None, description="Another team; its own overflow then applies.")
    voicemail: str | None = Field(None, description="A voicemail box name.")
    callback_offer: bool = Field(
        False, description='Offer "press 1 to be called back and keep your place".'
    )

    @field_validator("voicemail")
    @classmethod
    def _box(cls, value: str | None) -> str | None:
        if value is not None and not VOICEMAIL_BOX_RE.match(value):
            raise ValueError(f"{value!r} is not a voicemail box name; write e.g. sales")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Overflow:
        chosen = [
            key
            for key, on in (
                ("team", self.team is not None),
                ("voicemail", self.voicemail is not None),
                ("callback_offer", self.callback_offer),
            )
            if on
        ]
        if len(chosen) != 1:
            got = ", ".join(chosen) if chosen else "none"
            raise ValueError(
                f"give exactly one overflow action (got {got}); write {{team: reception}}, "
                "{voicemail: sales} or {callback_offer: true}"
            )
        return self

    @property
    def action(self) -> Literal["team", "voicemail", "callback_offer"]:
        if self.team is not None:
            return "team"
        if self.voicemail is not None:
            return "voicemail"
        return "callback_offer"


def _overflow_shorthand(value: object) -> object:
    # `overflow: voicemail` is a natural thing to write; say how to write it instead.
    if isinstance(value, str):
        raise ValueError(
            f"{value!r} is not an overflow action; write {{team: <team name>}}, "
            "{voicemail: <box>} or {callback_offer: true}"
        )
    return value


class Team(_Strict):
    """A group of agents rung together or in turn; see the module docstring for the keys."""

    members: MemberList = Field(
        default_factory=list,
        description="Agent ids or dial strings, e.g. [ivanov, PJSIP/101]. With a rota: the roster.",
    )
    strategy: Strategy = Field("ring_all", description="How the on-duty agents are rung.")
    ring_timeout: float = Field(
        20.0, gt=0, le=600, description="Seconds to ring one attempt before giving up."
    )
    max_wait: float = Field(
        300.0, gt=0, le=86400, description="Seconds a caller waits in the queue before overflow."
    )
    wrap_up: float = Field(
        0.0, ge=0, le=3600, description="Seconds after a call before the agent gets another."
    )
    hold_music: str | None = Field(
        None, description="Music-on-hold class while waiting; default: flow.hold_music."
    )
    announce_position_every: float = Field(
        0.0, ge=0, le=3600, description="Seconds between queue-position announcements; 0: off."
    )
    overflow: Annotated[Overflow | None, BeforeValidator(_overflow_shorthand)] = None
    rota: Rota | None = None
    fallback_members: MemberList = Field(
        default_factory=list, description="On duty whenever the rota gives nobody."
    )

    @field_validator("members", "fallback_members")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        return _member_list(value)

    @model_validator(mode="after")
    def _someone(self) -> Team:
        if not self.members and self.rota is None:
            raise ValueError(
                "the team has nobody to ring; add members: [PJSIP/101, ...] or a rota:"
            )
        if self.fallback_members and self.rota is None:
            raise ValueError(
                "fallback_members is only used with a rota (when no shift runs); "
                "add a rota: or move these into members:"
            )
        return self

    def roster(self) -> list[str]:
        """Everyone the team may ring, in config order: members, shifts, fallback."""
        shift_refs = self.rota.agents() if self.rota else []
        return list(dict.fromkeys([*self.members, *shift_refs, *self.fallback_members]))

    def references(self) -> Iterator[tuple[str, str]]:
        """(key path inside the team, reference) for every agent reference."""
        for n, ref in enumerate(self.members):
            yield f"members[{n}]", ref
        if self.rota is not None:
            for s, shift in enumerate(self.rota.shifts):
                for n, ref in enumerate(shift.agents):
                    yield f"rota.shifts[{s}].agents[{n}]", ref
        for n, ref in enumerate(self.fallback_members):
            yield f"fallback_members[{n}]", ref


def check_staff(agents: Mapping[str, Agent], teams: Mapping[str, Team]) -> None:
    """Cross-check agents and teams; ValueError naming the key path and the fix.

    Agent ids are well formed and their phones distinct; every reference in a team is a known
    agent id or a dial string that is no declared agent's phone; overflow teams exist and
    overflow chains end.
    """
    phones: dict[str, str] = {}
    for agent_id, agent in agents.items():
        if not AGENT_ID_RE.match(agent_id):
            raise ValueError(
                f"agents.{agent_id}: an agent id is letters, digits, '_', '.', '-' "
                "(no '/'), such as ivanov or op101; rename it"
            )
        other = phones.setdefault(agent.endpoint, agent_id)
        if other != agent_id:
            raise ValueError(
                f"agents.{agent_id}.endpoint: {agent.endpoint} is also agent {other}'s phone; "
                "one phone is one agent, so give each agent their own endpoint"
            )
    for name, team in teams.items():
        for where, ref in team.references():
            if is_dial_string(ref):
                if ref in phones:
                    raise ValueError(
                        f"teams.{name}.{where}: {ref} is agent {phones[ref]}'s phone; "
                        f"write {phones[ref]} instead so the agent's state is tracked once"
                    )
            elif ref not in agents:
                known = ", ".join(sorted(agents)) or "none defined: add an agents: section"
                raise ValueError(
                    f"teams.{name}.{where}: no agent {ref!r} (known: {known}); {_MEMBER_HINT}"
                )
    for name, team in teams.items():
        target = team.overflow.team if team.overflow is not None else None
        if target is not None and target not in teams:
            raise ValueError(
                f"teams.{name}.overflow.team: no team named {target!r}; "
                f"use one of {sorted(t for t in teams if t != name)} or overflow to voicemail"
            )
    for name in teams:
        path: list[str] = []
        current: str | None = name
        while current is not None:
            if current in path:
                loop = " -> ".join([*path[path.index(current) :], current])
                raise ValueError(
                    f"teams.{name}.overflow: the overflow loops ({loop}); end one of these "
                    "teams' overflow with {voicemail: <box>} or {callback_offer: true}"
                )
            path.append(current)
            overflow = teams[current].overflow
            current = overflow.team if overflow is not None else None
    return None


def agent_directory(agents: Mapping[str, Agent], teams: Mapping[str, Team]) -> dict[str, Agent]:
    """Every agent by id: the declared ones plus one implied per dial string used in a team."""
    directory = dict(agents)
    for team in teams.values():
        for _, ref in team.references():
            if ref not in directory and is_dial_string(ref):
                directory[ref] = Agent(name=ref, endpoint=ref)
    return directory
