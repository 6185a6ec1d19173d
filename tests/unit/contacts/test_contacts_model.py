"""Pure rules: tiers, splitting a phone cell, number normalisation."""

from __future__ import annotations

import pytest

from pbx_service.calls.queueing import Tier
from pbx_service.contacts.directory import normalise_caller
from pbx_service.contacts.model import EMPTY_TIER, normalise_number, parse_tier, split_numbers


@pytest.mark.parametrize(
    ("raw", "tier"),
    [
        ("A", Tier.A),
        ("a", Tier.A),
        (" b ", Tier.B),
        ("C", Tier.C),
        ("VIP", Tier.A),
        ("vip", Tier.A),
        ("\u0410", Tier.A),  # Cyrillic А
        ("\u0432", Tier.B),  # Cyrillic в
        ("\u0421", Tier.C),  # Cyrillic С
        ("", EMPTY_TIER),
        ("   ", EMPTY_TIER),
        (None, EMPTY_TIER),
    ],
)
def test_parse_tier_accepts_documented_spellings(raw: str | None, tier: Tier) -> None:
    assert parse_tier(raw) is tier


def test_empty_tier_means_c() -> None:
    assert EMPTY_TIER is Tier.C


@pytest.mark.parametrize("raw", ["Gold", "D", "1", "unknown", "AB"])
def test_parse_tier_rejects_unknown_values(raw: str) -> None:
    assert parse_tier(raw) is None


@pytest.mark.parametrize(
    "raw", ["8 (495) 123-45-67", "+7 495 1234567", "74951234567", "84951234567", "+74951234567"]
)
def test_the_russian_spellings_normalise_to_one_number(raw: str) -> None:
    assert normalise_number(raw) == "+74951234567"
    assert normalise_caller(raw) == "+74951234567"


@pytest.mark.parametrize(
    "raw",
    ["123-45-67", "+7 495 12345", "abc", "", "7.91612E+10", "+1234567"],
)
def test_invalid_numbers_are_rejected(raw: str) -> None:
    assert normalise_number(raw) is None


def test_foreign_numbers_keep_their_country() -> None:
    assert normalise_number("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", [None, "", "anonymous", "Restricted", "not a number"])
def test_callers_that_cannot_be_in_the_directory_have_no_key(raw: str | None) -> None:
    assert normalise_caller(raw) is None


@pytest.mark.parametrize(
    ("cell", "pieces"),
    [
        ("8 (495) 123-45-67", ["8 (495) 123-45-67"]),
        ("8 495 1234567; +7 916 123-45-67", ["8 495 1234567", "+7 916 123-45-67"]),
        ("84951234567,89161234567", ["84951234567", "89161234567"]),
        ("84951234567 / 89161234567", ["84951234567", "89161234567"]),
        ("84951234567\n89161234567", ["84951234567", "89161234567"]),
        ("8 495 123-45-67 доб. 123", ["8 495 123-45-67"]),
        ("8 495 123-45-67, доб.123; 8 916 1234567", ["8 495 123-45-67", "8 916 1234567"]),
        ("+7 495 1234567 ext 5", ["+7 495 1234567"]),
        ("", []),
        (None, []),
        (" ; , ", []),
    ],
)
def test_split_numbers(cell: str | None, pieces: list[str]) -> None:
    assert split_numbers(cell) == pieces
