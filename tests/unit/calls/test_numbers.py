import pytest

from pbx_service.calls.numbers import clean_text, to_e164


@pytest.mark.parametrize(
    "raw",
    ["8 (495) 123-45-67", "+7 495 1234567", "74951234567", "84951234567", "+74951234567"],
)
def test_russian_spellings_match(raw: str) -> None:
    assert to_e164(raw) == "+74951234567"


@pytest.mark.parametrize("raw", [None, "", "  ", "anonymous", "Anonymous", "unknown"])
def test_no_caller_id(raw: str | None) -> None:
    assert to_e164(raw) is None


def test_foreign_number_keeps_its_country() -> None:
    assert to_e164("+49 30 1234567") == "+49301234567"


def test_garbage_is_kept_cleaned_not_raised() -> None:
    assert to_e164("abc\x00def") == "abcdef"
    assert to_e164("101") == "101"


def test_clean_text_bounds_and_strips_controls() -> None:
    assert clean_text('Иван\x00 "VIP"\n') == 'Иван "VIP"'
    assert len(clean_text("я" * 10_000) or "") == 200
    assert clean_text("\x00\x01") is None
