"""Build a `Config` from a YAML file and the environment, with errors a person can act on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pbx_service.config.ivr import find_duplicate_keys
from pbx_service.config.model import Config
from pbx_service.errors import PbxError

# The only environment variables the daemon reads; they override the file.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "PBX_ARI_URL": ("ari", "url"),
    "PBX_ARI_USERNAME": ("ari", "username"),
    "PBX_ARI_PASSWORD": ("ari", "password"),
    "DATABASE_URL": ("database", "url"),
}


class ConfigError(PbxError):
    """The configuration cannot be used; the message names the file, the key path and the fix."""

    error_id = "config-invalid"


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass the path of your YAML config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from exc
    return parse_config(text, source=str(path), environ=environ)


def parse_config(
    text: str, *, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    duplicates = find_duplicate_keys(text)
    if duplicates:
        where = ", ".join(f"{path + '.' if path else ''}{key}" for path, key in duplicates)
        raise ConfigError(
            f"{source}: key(s) given twice: {where}; YAML would silently keep only the last "
            "one, so remove or rename the duplicate"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of keys such as lines:, teams:"
        )
    for name, key_path in ENV_OVERRIDES.items():
        value = (environ or {}).get(name)
        if value:
            _set_path(data, key_path, value)
    # Only fills in a configured e-mail section: a password alone is not an SMTP server.
    smtp_password = (environ or {}).get("PBX_SMTP_PASSWORD")
    notify = data.get("notify")
    if smtp_password and isinstance(notify, dict) and isinstance(notify.get("email"), dict):
        notify["email"]["password"] = smtp_password
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc)) from None


def _set_path(data: dict[str, Any], key_path: tuple[str, ...], value: str) -> None:
    node = data
    for key in key_path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[key_path[-1]] = value


def _describe(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s) in the configuration:"]
    for error in exc.errors():
        where = key_path(error["loc"]) or "(top level)"
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against the README's reference"
        elif kind == "missing":
            message = "required key is missing; add it (see the README's config reference)"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def key_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the YAML key path: ``teams.sales.members[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
