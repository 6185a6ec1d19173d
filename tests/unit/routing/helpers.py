"""Builders shared by the routing tests: config from YAML, instants, agent states."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pbx_service.config.load import key_path
from pbx_service.config.teams import Agent, Team, check_staff

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")


class Root(BaseModel):
    """The shape the lead adds to the root Config: agents, teams and their cross-check."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    agents: dict[str, Agent] = Field(default_factory=dict)
    teams: dict[str, Team]

    @model_validator(mode="after")
    def _staff(self) -> Root:
        check_staff(self.agents, self.teams)
        return self


def root(text: str) -> Root:
    return Root.model_validate(yaml.safe_load(text))


def team(text: str) -> Team:
    """One team from the YAML of its body (what goes under teams: <name>:)."""
    return Team.model_validate(yaml.safe_load(text))


def local(text: str, zone: ZoneInfo = MOSCOW, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


def errors_of(text: str) -> list[tuple[str, str]]:
    """(key path, message) of each problem in a YAML document with agents: and teams:."""
    try:
        root(text)
    except ValidationError as exc:
        return [(key_path(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    raise AssertionError("the document was accepted")
