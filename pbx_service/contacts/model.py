"""A known customer, and the pure rules shared by lookup and import: numbers and tiers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import phonenumbers

from pbx_service.calls.numbers import to_e164
from pbx_service.calls.queueing import Tier

# An empty tier cell means C: the contact is a known customer (known callers always rank
# above unknown ones in the queue), just not one anybody marked as important.
EMPTY_TIER = Tier.C

# Spellings accepted for each tier, casefolded. The Cyrillic letters look exactly like the
# Latin ones and Russian Excel users type them; "VIP" is how many CRMs name the top tier.
TIER_SPELLINGS: dict[str, Tier] = {
    "a": Tier.A,
    "а": Tier.A,  # Cyrillic
    "vip": Tier.A,
    "вип": Tier.A,
    "b": Tier.B,
    "в": Tier.B,  # Cyrillic
    "c": Tier.C,
    "с": Tier.C,  # Cyrillic
}

# Extensions ("доб. 123", "ext 5", "вн. 12") never reach us in a caller ID: drop them.
_EXTENSION = re.compile(r"[\s,]*(?:доб|вн|ext|x)\.?\s*\d+", re.IGNORECASE)
# Separators between several numbers in one cell.
_NUMBER_SEPARATORS = re.compile(r"[;,/\n\r]+")


@dataclass(frozen=True, slots=True)
class Contact:
    """A known customer as the call flow sees it.

    ``numbers`` are E.164, sorted. ``account_manager`` is an agent id or a dial string, as
    the CRM export gave it. ``external_id`` is the CRM's id, when the import had one.
    """

    id: uuid.UUID
    name: str
    company: str | None
    tier: Tier
    account_manager: str | None
    numbers: tuple[str, ...]
    external_id: str | None = None
    notes: str | None = None


def parse_tier(raw: str | None) -> Tier | None:
    """The tier a CRM cell means: A/B/C in any case (Latin or Cyrillic letters), "VIP" → A,
    empty → C (`EMPTY_TIER`). None when the value is not a tier we know."""
    text = (raw or "").strip().casefold()
    if not text:
        return EMPTY_TIER
    return TIER_SPELLINGS.get(text)


def split_numbers(cell: str | None) -> list[str]:
    """The phone numbers written in one cell, separated by ``;``, ``,``, ``/`` or line
    breaks; extensions are dropped. Returns the raw pieces, not yet normalised."""
    if not cell:
        return []
    text = _EXTENSION.sub("", cell)
    return [piece.strip() for piece in _NUMBER_SEPARATORS.split(text) if piece.strip()]


def normalise_number(raw: str, default_region: str = "RU") -> str | None:
    """The number in E.164 when it is a valid phone number, else None.

    Uses `calls.numbers.to_e164` (the same rule the call flow applies to caller IDs, so a
    stored number matches however the network spells it), then insists on a *valid* number:
    "123-45-67" without a city code would otherwise become "+71234567" and never match.
    """
    e164 = to_e164(raw, default_region)
    if e164 is None or not e164.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    return e164 if phonenumbers.is_valid_number(parsed) else None
