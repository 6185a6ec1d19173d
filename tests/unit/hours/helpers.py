"""Builders shared by the hours tests: schedules from YAML text, local instants."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pbx_service.calls.hours import BusinessHours
from pbx_service.config.hours import AfterHoursPolicy, Schedule
from pbx_service.config.load import key_path

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")


class Root(BaseModel):
    """The shape the lead will add to the root Config: named schedules and a policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schedules: dict[str, Schedule]
    after_hours: AfterHoursPolicy = AfterHoursPolicy()


def root(text: str) -> Root:
    return Root.model_validate(yaml.safe_load(text))


def schedule(text: str) -> Schedule:
    """One schedule from the YAML of its body (what goes under schedules: <name>:)."""
    return Schedule.model_validate(yaml.safe_load(text))


def hours(text: str) -> BusinessHours:
    return BusinessHours(schedule(text), "test")


def local(text: str, zone: ZoneInfo = MOSCOW, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


def errors_of(text: str) -> list[tuple[str, str]]:
    """(key path, message) of each problem in a YAML document with schedules: and after_hours:."""
    try:
        root(text)
    except ValidationError as exc:
        return [(key_path(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    raise AssertionError("the document was accepted")
