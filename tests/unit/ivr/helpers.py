"""Builders shared by the IVR tests: configs from YAML text, and a naive executor."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pbx_service.calls.ivr import (
    CancelTimer,
    Command,
    IvrSession,
    Play,
    Route,
    StartTimer,
    StopPlayback,
)
from pbx_service.config.ivr import IvrConfig

# The example of the issue: every kind of option, a submenu, direct dial.
FULL = """
ivr:
  start: main
  recording_notice: recording-notice
  menus:
    main:
      prompt: main-menu
      timeout: 5
      max_retries: 3
      invalid_prompt: invalid
      timeout_prompt: timeout
      barge_in: true
      direct_dial: {enabled: true, digits: 3, first: "1-8"}
      options:
        "1": {team: sales, category: customer}
        "2": {team: hr, category: job_applicant}
        "3": {menu: partners, category: partner}
        "0": {operator: true}
        "9": {repeat: true}
        "5": {repeat: true, language: en}
        "*": {operator: true, category: other}
        "8": {voicemail: general, category: other}
        "7": {self_service: order_status, category: customer}
      default: {operator: true}
    partners:
      prompt: partners-menu
      max_retries: 1
      options:
        "1": {team: purchasing}
        "2": {team: logistics, category: supplier}
        "3": {menu: deep}
        "*": {back: true}
      default: {voicemail: partners}
    deep:
      prompt: deep-menu
      barge_in: false
      options:
        "1": {extension: "101"}
        "*": {back: true}
        "#": {menu: main}
"""


class Root(BaseModel):
    """The shape the lead adds to the root Config: an ivr: section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ivr: IvrConfig


def ivr(text: str) -> IvrConfig:
    return Root.model_validate(yaml.safe_load(text)).ivr


def ivr_from(data: dict[str, Any]) -> IvrConfig:
    return Root.model_validate({"ivr": data}).ivr


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(key path, message) of each problem in an ivr: section given as data."""
    try:
        ivr_from(data)
    except ValidationError as exc:
        return [(_path(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    raise AssertionError("the section was accepted")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Executor:
    """What the async call session does with the commands, minus the I/O.

    It holds the playbacks Asterisk is playing (in order) and the one deadline, and checks
    the commands make sense: no stop of an unknown playback, no second timer."""

    def __init__(self, session: IvrSession) -> None:
        self.session = session
        self.playing: list[int] = []
        self.stopped: list[int] = []  # their PlaybackFinished is still to come
        self.timer: int | None = None
        self.commands: list[Command] = []
        self.route: Route | None = None
        self.changes = 0  # events that produced commands

    def run(self, commands: list[Command]) -> list[Command]:
        if commands:
            self.changes += 1
        assert self.route is None or not commands, "commands after the Route"
        for command in commands:
            self.commands.append(command)
            if isinstance(command, Play):
                self.playing.append(command.ref)
            elif isinstance(command, StopPlayback):
                self.playing.remove(command.ref)
                self.stopped.append(command.ref)
            elif isinstance(command, StartTimer):
                assert self.timer is None, "a second timer while one runs"
                assert command.seconds > 0
                self.timer = command.ref
            elif isinstance(command, CancelTimer):
                assert self.timer == command.ref
                self.timer = None
            else:
                assert command is commands[-1], "the Route is the last command"
                self.route = command
        return commands

    def start(self) -> list[Command]:
        return self.run(self.session.start())

    def press(self, keys: str) -> list[Command]:
        out: list[Command] = []
        for key in keys:
            out.extend(self.run(self.session.on_digit(key)))
        return out

    def finish_playback(self) -> list[Command]:
        """Asterisk finished the playback at the head of the channel's queue."""
        ref = self.playing.pop(0)
        return self.run(self.session.on_playback_finished(ref))

    def fire_timer(self) -> list[Command]:
        assert self.timer is not None
        ref, self.timer = self.timer, None
        return self.run(self.session.on_timeout(ref))

    def listen(self) -> list[Command]:
        """Let every prompt play to its end."""
        out: list[Command] = []
        while self.playing:
            out.extend(self.finish_playback())
        return out

    def waiting(self) -> bool:
        """The session waits on exactly one thing: prompts playing, or a timer."""
        return bool(self.playing) != (self.timer is not None)

    def idle(self, limit: int) -> int:
        """The caller does nothing: prompts end, timers run out. Returns events used."""
        used = 0
        while self.route is None:
            assert self.waiting(), "stuck: no prompt and no timer"
            assert used < limit, "no Route after the bound"
            if self.playing:
                self.finish_playback()
            else:
                self.fire_timer()
            used += 1
        return used
