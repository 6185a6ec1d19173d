"""Notifications about new voicemails and callback tasks, as they appear in the YAML config.

The keys::

    notify:
      email:
        host: smtp.example.com
        port: 587                        # default: 587 (starttls), 465 (ssl), 25 (none)
        security: starttls               # starttls, ssl or none
        username: pbx@example.com
        password: ""                     # prefer the environment (see the README)
        from: "PBX <pbx@example.com>"
        to: [sales@example.com, boss@example.com]
        attach_format: mp3               # mp3, ogg or none
        max_attachment_mb: 10            # a bigger recording is named, not attached
        events: [voicemail, callback_task]
      webhooks:
        - url: https://crm.example.com/hooks/pbx
          secret: "at least 16 characters"   # HMAC-SHA256 key of X-PBX-Signature
          timeout: 10
          max_attempts: 8
          events: [voicemail]
      retry_initial_seconds: 10          # first retry delay; doubles each attempt
      retry_max_seconds: 3600
      lease_seconds: 300                 # a send cut short by a crash is retried after this
      timezone: Europe/Moscow            # times in e-mails; default UTC

Events: ``voicemail`` (a caller left a message) and ``callback_task`` (a call that reached
nobody opened a new callback task). A destination that takes both gets one message for a
voicemail that opened a task, not two.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

NotificationKind = Literal["voicemail", "callback_task"]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = ("voicemail", "callback_task")
AttachFormat = Literal["mp3", "ogg", "none"]
SmtpSecurity = Literal["starttls", "ssl", "none"]

DEFAULT_SMTP_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
MIN_SECRET_LENGTH = 16
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")
_URL_RE = re.compile(r"^https?://[^/\s?#]+(/\S*)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _check_address(value: str) -> str:
    _name, address = parseaddr(value)
    if not address or "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(
            f"{value!r} is not an e-mail address; write it as user@example.com "
            'or "Name <user@example.com>"'
        )
    return value


def _check_events(events: list[NotificationKind]) -> list[NotificationKind]:
    if len(set(events)) != len(events):
        raise ValueError("lists an event twice; keep one entry")
    return events


Events = Annotated[
    list[NotificationKind],
    BeforeValidator(_one_or_list),
    Field(
        min_length=1,
        description="Which events this destination receives: voicemail, callback_task.",
    ),
]


class EmailSettings(_Strict):
    """Where and how to send notification e-mails (SMTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str = Field(description="SMTP server host name or address.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default: 587 for starttls, 465 for ssl, 25 for none."
    )
    security: SmtpSecurity = Field(
        "starttls",
        description="starttls (upgrade a plain connection), ssl (TLS from the start) or none.",
    )
    username: str | None = Field(None, description="SMTP login; none: send without logging in.")
    password: SecretStr = Field(
        SecretStr(""), description="SMTP password; prefer the environment over the file."
    )
    from_address: str = Field(alias="from", description='Sender, e.g. "PBX <pbx@example.com>".')
    to: Annotated[list[str], BeforeValidator(_one_or_list)] = Field(
        min_length=1, description="Recipients."
    )
    attach_format: AttachFormat = Field(
        "mp3", description="How a voicemail is attached: mp3, ogg or none (not attached)."
    )
    max_attachment_mb: float = Field(
        10, gt=0, le=100, description="A recording bigger than this is named but not attached."
    )
    timeout: float = Field(30, gt=0, le=600, description="Seconds one SMTP delivery may take.")
    max_attempts: int = Field(10, ge=1, le=100, description="Attempts before giving up.")
    events: Events = ["voicemail", "callback_task"]

    @field_validator("host")
    @classmethod
    def _host_shape(cls, value: str) -> str:
        if not _HOST_RE.match(value):
            raise ValueError(f"{value!r} is not a host name; write it as smtp.example.com")
        return value

    @field_validator("from_address")
    @classmethod
    def _from_shape(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("to")
    @classmethod
    def _to_shape(cls, value: list[str]) -> list[str]:
        for address in value:
            _check_address(address)
        if len(set(value)) != len(value):
            raise ValueError("lists a recipient twice; keep one entry")
        return value

    @field_validator("events")
    @classmethod
    def _events_once(cls, value: list[NotificationKind]) -> list[NotificationKind]:
        return _check_events(value)

    @model_validator(mode="after")
    def _login_complete(self) -> EmailSettings:
        if self.password.get_secret_value() and not self.username:
            raise ValueError("a password is set but no username; add username: or drop it")
        return self

    @property
    def smtp_port(self) -> int:
        """The configured port or the usual one for the security mode."""
        return self.port or DEFAULT_SMTP_PORTS[self.security]

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * 1024 * 1024)


class WebhookSettings(_Strict):
    """One HTTP endpoint that receives signed JSON notifications."""

    url: str = Field(description="http(s) URL the notifications are POSTed to.")
    secret: SecretStr = Field(
        description="HMAC-SHA256 key: X-PBX-Signature is sha256=<hex of the HMAC of the body>."
    )
    timeout: float = Field(10, gt=0, le=300, description="Seconds one POST may take.")
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts before giving up.")
    events: Events = ["voicemail", "callback_task"]

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str) -> str:
        if not _URL_RE.match(value):
            raise ValueError("must be an http(s) URL such as https://crm.example.com/hooks/pbx")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("must not carry credentials; the secret signs every request instead")
        return value

    @field_validator("secret")
    @classmethod
    def _secret_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters; generate one with "
                "`openssl rand -hex 32` and give the same value to the receiver"
            )
        return value

    @field_validator("events")
    @classmethod
    def _events_once(cls, value: list[NotificationKind]) -> list[NotificationKind]:
        return _check_events(value)


class NotifySettings(_Strict):
    """Every notification destination and the retry policy they share."""

    email: EmailSettings | None = Field(None, description="E-mail; none: no e-mail is sent.")
    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="Signed HTTP callbacks."
    )
    retry_initial_seconds: float = Field(
        10, gt=0, le=3600, description="Delay before the first retry; doubles with each one."
    )
    retry_max_seconds: float = Field(
        3600, gt=0, le=86400, description="The longest delay between two attempts."
    )
    lease_seconds: float = Field(
        300,
        ge=1,
        le=86400,
        description="A notification whose sender crashed mid-send is retried after this long.",
    )

    timezone: str = Field("UTC", description="Time zone of the times written in e-mails.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone; write an IANA name such as Europe/Moscow"
            ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotifySettings:
        urls = [hook.url for hook in self.webhooks]
        for n, url in enumerate(urls):
            if url in urls[:n]:
                raise ValueError(f"webhooks[{n}].url: {url} is listed twice; keep one entry")
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError(
                "retry_max_seconds must be at least retry_initial_seconds "
                f"({self.retry_initial_seconds})"
            )
        longest = max(
            [hook.timeout for hook in self.webhooks]
            + ([self.email.timeout] if self.email else [0.0])
        )
        if self.lease_seconds <= longest:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must exceed the longest delivery timeout "
                f"({longest}), or a slow send would be taken over and sent twice"
            )
        return self

    @property
    def enabled(self) -> bool:
        """Whether any destination is configured."""
        return self.email is not None or bool(self.webhooks)
