"""Properties of parse_csv over generated exports: every row is accounted for, and nothing
but our own errors escapes."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_service.contacts.errors import ContactsError
from pbx_service.contacts.importer import parse_csv

HEADER = ["ID", "ФИО", "Категория", "Телефон", "Мобильный"]
cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "A", "b", "VIP", "Gold", "8 (495) 123-45-67", "74951234567",
                     "+7 916 111-22-33; 8 495 7654321", "123", "Иванов", "доб. 5"]),
)  # fmt: skip
row = st.lists(cell, min_size=0, max_size=7)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, max_size=12), delimiter=st.sampled_from([",", ";", "\t"]))
def test_every_data_row_is_imported_or_skipped_with_a_reason(
    rows: list[list[str]], delimiter: str
) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter).writerows([HEADER, *rows])
    parsed = parse_csv(buf.getvalue().encode("utf-8"), delimiter=delimiter)
    imported = {r.row for r in parsed.rows}
    skipped = {r for r, _ in parsed.skipped}
    assert not imported & skipped
    assert len(imported) + len(skipped) == parsed.data_rows
    assert all(reason for _, reason in parsed.skipped)
    numbers = [n for r in parsed.rows for n, _ in r.numbers]
    assert len(numbers) == len(set(numbers))  # one number, one contact
    assert all(n.startswith("+") for n in numbers)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_give_a_result_or_our_error(data: bytes) -> None:
    try:
        parse_csv(data)
    except ContactsError:
        pass
