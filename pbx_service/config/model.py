"""The one typed configuration object, built from a YAML file plus a few environment variables.

Only `pbx_service.config.load` reads files and the environment; everything else receives a
`Config`. Every model forbids unknown keys, so a typo is an error naming its key path instead of
a silently ignored setting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from pbx_service.config.hours import AfterHoursPolicy, Schedule
from pbx_service.config.ivr import IvrConfig, check_references
from pbx_service.config.notify import NotifySettings
from pbx_service.config.teams import Agent, Team, agent_directory, check_staff

# Dial strings Asterisk accepts for an agent: TECH/resource, e.g. PJSIP/101, Local/101@agents,
# PJSIP/+74951234567@trunk.
ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[^\s/][^\s]*$")
DID_RE = re.compile(r"^\+?[0-9]{2,20}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AriSettings(Strict):
    url: str = Field(
        "http://127.0.0.1:8088/ari",
        description="Base URL of Asterisk's ARI, ending in /ari (http.conf bind address + prefix).",
    )
    username: str = "pbx-service"
    password: SecretStr = Field(
        SecretStr(""), description="ARI password; prefer the PBX_ARI_PASSWORD environment variable."
    )
    app: str = Field("pbx-service", description="Stasis application name used in the dialplan.")
    ping_interval: float = Field(5.0, gt=0, description="Seconds between liveness checks.")
    ping_timeout: float = Field(3.0, gt=0, description="Seconds a liveness check may take.")
    reconnect_max_delay: float = Field(10.0, gt=0, description="Cap of the reconnect backoff.")

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        value = value.rstrip("/")
        if not re.match(r"^https?://[^/\s]+(/.*)?$", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8088/ari")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError(
                "must not carry credentials; put the password in PBX_ARI_PASSWORD instead"
            )
        return value


class DatabaseSettings(Strict):
    url: SecretStr | None = Field(
        None,
        description="postgresql:// URL; prefer DATABASE_URL. Empty: an embedded PostgreSQL "
        "(pgserver) under storage.data_dir.",
    )
    batch_rows: int = Field(500, ge=1, description="Call-log writer: flush at this many rows.")
    batch_seconds: float = Field(
        0.8,
        gt=0,
        description="Call-log writer: start a write at least this often; 0.8 s leaves room for "
        "the write itself within the 1 s a row may wait (benchmarks/calllog.py).",
    )


class StorageSettings(Strict):
    data_dir: Path | None = Field(
        None,
        description="Embedded PostgreSQL data and the call-log spool. Default: the user data dir.",
    )


class Line(Strict):
    """One published number. All of them lead into the same flow: the one virtual line."""

    did: str = Field(description="The number as Asterisk sees it in ${EXTEN} of the trunk context.")
    label: str = Field(description='Where it is published: "website", "HR ads", ...')
    language: str | None = Field(None, description="Prompt language for callers of this number.")
    schedule: str | None = Field(
        None, description="Business hours of this number; default: the top-level schedule."
    )

    @field_validator("did")
    @classmethod
    def _did_digits(cls, value: str) -> str:
        if not DID_RE.match(value):
            raise ValueError("must be the dialled digits, optionally with a leading +")
        return value


class VoicemailSettings(Strict):
    prompt: str = Field("leave-message", description="Prompt played before the beep.")
    beep: str = "beep"
    max_seconds: int = Field(120, ge=5, le=3600)
    max_silence_seconds: int = Field(10, ge=0, le=600, description="0: no silence detection.")
    finish_key: Literal["#", "*", "0", "any", "none"] = "#"
    thanks_prompt: str = "voicemail-thanks"


class FlowSettings(Strict):
    greeting: str = Field("greeting", description="Prompt played after answering.")
    please_hold: str = Field("please-hold", description="Prompt before ringing people.")
    reception_team: str = "reception"
    hold_music: str = Field("default", description="Music-on-hold class while the caller waits.")
    extension_dial: str = Field(
        "PJSIP/{extension}",
        description="Dial string for an internal number the caller dials in a menu.",
    )
    voicemail: VoicemailSettings = VoicemailSettings()


class AgiSettings(Strict):
    enabled: bool = Field(True, description="Serve FastAGI (outbound calls from phones).")
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535, description="0: any free port (tests).")


class OutboundSettings(Strict):
    company_number: str | None = Field(
        None,
        description="The one number customers see on calls from internal phones (E.164). "
        "Without it, outbound calls keep the phone's own caller ID.",
    )
    company_name: str | None = None
    dial_template: str = Field(
        "PJSIP/{digits}@trunk",
        description="How the daemon dials a customer back ({number}: E.164, {digits}: "
        "without the +).",
    )
    ring_timeout: float = Field(30, gt=0, le=300, description="Seconds to ring a customer.")

    @field_validator("company_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\+[1-9][0-9]{6,14}", value):
            raise ValueError("must be in E.164 form, such as +74952223344")
        return value


class CallbackSettings(Strict):
    check_seconds: float = Field(
        10,
        gt=0,
        le=3600,
        description="How often the queue's BLF state and stale claims are checked.",
    )
    stale_claim_minutes: float = Field(
        30, gt=0, description="A claimed task nobody finished returns to the queue after this."
    )
    sla_minutes: float = Field(
        30,
        ge=0,
        le=10080,
        description="A callback task is due this long after the call (after hours: after "
        "the next opening).",
    )


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Config(Strict):
    ari: AriSettings = AriSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    language: str = Field("ru", description="Default prompt language.")
    prompts_dir: Path | None = Field(None, description="Default: the shipped ivr_prompts/.")
    lines: Annotated[list[Line], Field(min_length=1)]
    agents: dict[str, Agent] = Field(
        default_factory=dict, description="People with a phone, by agent id."
    )
    teams: dict[str, Team] = Field(min_length=1)
    ivr: IvrConfig | None = Field(None, description="Menus; none: every call rings reception.")
    direct_lines: dict[str, str] = Field(
        default_factory=dict,
        description="Caller number -> agent id: these callers (the boss, a top client) skip "
        "the menu and ring that person first.",
    )
    voicemail_boxes: list[str] = Field(
        default_factory=lambda: ["general"],
        description="Voicemail boxes menus may send callers to.",
    )
    flow: FlowSettings = FlowSettings()
    schedules: dict[str, Schedule] = Field(
        default_factory=dict, description="Named business-hours schedules."
    )
    schedule: str | None = Field(
        None, description="The schedule of every line without its own; none: always open."
    )
    after_hours: AfterHoursPolicy = Field(
        default_factory=AfterHoursPolicy, description="What happens to calls while closed."
    )
    callbacks: CallbackSettings = CallbackSettings()
    agi: AgiSettings = AgiSettings()
    notify: NotifySettings = Field(
        default_factory=NotifySettings,
        description="E-mail and webhook notifications of new voicemails and callback tasks.",
    )
    outbound: OutboundSettings = OutboundSettings()
    log_level: LogLevel = "INFO"

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        dids = [line.did for line in self.lines]
        duplicate = {d for d in dids if dids.count(d) > 1}
        if duplicate:
            raise ValueError(f"lines: DID {sorted(duplicate)[0]} is listed twice; keep one entry")
        for where, name in [("schedule", self.schedule)] + [
            (f"lines[{n}].schedule", line.schedule) for n, line in enumerate(self.lines)
        ]:
            if name is not None and name not in self.schedules:
                known = sorted(self.schedules) or ["(none defined: add a schedules: section)"]
                raise ValueError(f"{where}: no schedule named {name!r}; use one of {known}")
        if self.flow.reception_team not in self.teams:
            raise ValueError(
                f"flow.reception_team: no team named {self.flow.reception_team!r}; "
                f"define it under teams: or use one of {sorted(self.teams)}"
            )
        check_staff(self.agents, self.teams)
        agent_ids = set(agent_directory(self.agents, self.teams))
        for number, agent in self.direct_lines.items():
            if agent not in agent_ids:
                raise ValueError(
                    f"direct_lines.{number}: no agent {agent!r}; use an id from agents: "
                    f"or a team member such as {sorted(agent_ids)[:3]}"
                )
            if sum(ch.isdigit() for ch in number) < 5:
                raise ValueError(
                    f"direct_lines.{number}: not a phone number; write it as +74951234567"
                )
        if self.ivr is not None:
            problems = check_references(
                self.ivr,
                set(self.teams),
                set(self.voicemail_boxes),
                lambda _name: True,
                self_services=set(),
            )
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def prompt_names(self) -> list[str]:
        """Our prompts the flow plays (names without a scheme; `sound:...` are Asterisk's)."""
        vm = self.flow.voicemail
        names: list[str | None] = [
            self.flow.greeting,
            self.flow.please_hold,
            vm.prompt,
            vm.thanks_prompt,
        ]
        if self.ivr is not None:
            names += self.ivr.prompt_names()
        if self.schedules:
            policy = self.after_hours
            names += [policy.greeting, policy.holiday_greeting, policy.night_greeting]
            names += ["callback-promise", "callback-after-opening"]
        return sorted({name for name in names if name and ":" not in name})

    def languages(self) -> list[str]:
        menus = self.ivr.languages() if self.ivr is not None else []
        return sorted(
            {self.language, *menus, *(line.language for line in self.lines if line.language)}
        )

    def schedule_for(self, line: Line | None) -> str | None:
        return (line.schedule if line else None) or self.schedule

    def line_for(self, did: str) -> Line | None:
        for line in self.lines:
            if line.did == did:
                return line
        return None
