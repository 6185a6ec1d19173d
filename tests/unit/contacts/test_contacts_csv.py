"""parse_csv and ColumnMapping on raw bytes: encodings, delimiters, mappings, skip reasons."""

from __future__ import annotations

import codecs
import csv
import io

import pytest

from pbx_service.calls.queueing import Tier
from pbx_service.contacts.errors import ColumnMappingError, ContactFileError
from pbx_service.contacts.importer import (
    ColumnMapping,
    ImportReport,
    PhoneColumn,
    decode,
    parse_csv,
    sniff_delimiter,
)

RU_HEADER = ["ID", "ФИО", "Компания", "Категория", "Менеджер", "Телефон", "Мобильный"]
RU_ROWS = [
    ["1", "Иванов Иван Иванович", "ООО «Ромашка»", "A", "agent-7", "8 (495) 123-45-67", ""],
    ["2", "Петрова Анна", "АО Лютик; филиал", "b", "", "+7 495 7654321", "8 916 111-22-33"],
    ["3", "Сидоров Пётр", "", "", "", "74959998877", ""],
]


def csv_bytes(
    rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8", bom: bool = False
) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    data = buf.getvalue().encode(encoding)
    return (codecs.BOM_UTF8 + data) if bom else data


def by_row(rows: list[tuple[int, str]]) -> dict[int, str]:
    return dict(rows)


# --- encodings and delimiters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "bom", "delimiter", "expected_encoding"),
    [
        ("utf-8", False, ",", "utf-8"),
        ("utf-8", True, ",", "utf-8-sig"),
        ("utf-8", True, ";", "utf-8-sig"),
        ("cp1251", False, ";", "cp1251"),
        ("cp1251", False, "\t", "cp1251"),
        ("utf-8", False, "\t", "utf-8"),
    ],
)
def test_encodings_and_delimiters_are_detected(
    encoding: str, bom: bool, delimiter: str, expected_encoding: str
) -> None:
    data = csv_bytes([RU_HEADER, *RU_ROWS], delimiter=delimiter, encoding=encoding, bom=bom)
    parsed = parse_csv(data)
    assert parsed.encoding == expected_encoding
    assert parsed.delimiter == delimiter
    assert parsed.skipped == []
    assert [r.name for r in parsed.rows] == [
        "Иванов Иван Иванович",
        "Петрова Анна",
        "Сидоров Пётр",
    ]
    assert parsed.rows[1].company == "АО Лютик; филиал"  # quoted delimiter inside a value


def test_utf16_with_bom_is_read() -> None:
    text = "\t".join(RU_HEADER) + "\r\n" + "\t".join(RU_ROWS[0]) + "\r\n"
    parsed = parse_csv(text.encode("utf-16"))
    assert parsed.encoding == "utf-16"
    assert [r.name for r in parsed.rows] == ["Иванов Иван Иванович"]


def test_explicit_encoding_that_does_not_fit_is_a_clear_error() -> None:
    with pytest.raises(ContactFileError, match="not valid utf-8"):
        decode("ФИО".encode("cp1251"), "utf-8")


def test_excel_workbook_is_refused_with_advice() -> None:
    with pytest.raises(ContactFileError, match="Excel workbook"):
        parse_csv(b"PK\x03\x04rest-of-zip")


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", codecs.BOM_UTF8])
def test_empty_file_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(ContactFileError, match="empty"):
        parse_csv(data)


def test_sniffer_prefers_the_delimiter_that_splits_rows_like_the_header() -> None:
    # Commas inside values, semicolons between columns (Russian Excel).
    text = "ФИО;Телефон\r\nИванов, Иван;84951234567\r\nПетров, Пётр;84957654321\r\n"
    assert sniff_delimiter(text) == ";"


# --- mappings ------------------------------------------------------------------------------


def test_mapping_parse_of_the_cli_example() -> None:
    mapping = ColumnMapping.parse(
        "name=ФИО,company=Компания,tier=Категория,phones=Телефон;Мобильный,manager=Менеджер,id=ID"
    )
    assert mapping == ColumnMapping(
        name=("ФИО",),
        phones=(PhoneColumn("Телефон", "work"), PhoneColumn("Мобильный", "mobile")),
        company="Компания",
        tier="Категория",
        manager="Менеджер",
        external_id="ID",
    )


def test_mapping_parse_joins_name_columns_and_takes_explicit_kinds() -> None:
    mapping = ColumnMapping.parse("name=Фамилия+Имя, phones=Тел1:work;Тел2:Home")
    assert mapping.name == ("Фамилия", "Имя")
    assert mapping.phones == (PhoneColumn("Тел1", "work"), PhoneColumn("Тел2", "home"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("name=ФИО", "needs phones"),
        ("phones=Телефон", "needs name"),
        ("name=ФИО,phones=Телефон,colour=Цвет", "unknown key 'colour'"),
        ("name=ФИО,phones=Телефон,name=Имя", "twice"),
        ("name=ФИО,phones", "not key=Column"),
        ("name=ФИО,phones= ; ", "at least one column"),
    ],
)
def test_mapping_parse_errors_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ColumnMappingError, match=message):
        ColumnMapping.parse(spec)


def test_mapping_round_trips_through_describe() -> None:
    mapping = ColumnMapping.parse("name=ФИО,tier=Категория,phones=Телефон;Мобильный,id=ID")
    assert ColumnMapping.parse(mapping.describe()) == mapping


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            RU_HEADER,
            ColumnMapping(
                name=("ФИО",),
                phones=(PhoneColumn("Телефон", "work"), PhoneColumn("Мобильный", "mobile")),
                company="Компания",
                tier="Категория",
                manager="Менеджер",
                external_id="ID",
            ),
        ),
        (
            ["Full Name", "Organization", "Tier", "Account Manager", "Phone", "Mobile phone"],
            ColumnMapping(
                name=("Full Name",),
                phones=(PhoneColumn("Phone", "work"), PhoneColumn("Mobile phone", "mobile")),
                company="Organization",
                tier="Tier",
                manager="Account Manager",
            ),
        ),
        (
            ["Фамилия", "Имя", "Отчество", "Организация", "Телефон 1", "Телефон 2", "Примечание"],
            ColumnMapping(
                name=("Фамилия", "Имя", "Отчество"),
                phones=(PhoneColumn("Телефон 1", "work"), PhoneColumn("Телефон 2", "work")),
                company="Организация",
                notes="Примечание",
            ),
        ),
        (
            [" name ", "PHONE"],
            ColumnMapping(name=(" name ",), phones=(PhoneColumn("PHONE", "work"),)),
        ),
    ],
)
def test_common_headers_are_detected(headers: list[str], expected: ColumnMapping) -> None:
    assert ColumnMapping.detect(headers) == expected


def test_detection_failure_lists_the_headers_and_the_fix() -> None:
    with pytest.raises(ColumnMappingError, match=r"as a phone among the headers 'ФИО', 'Город'"):
        ColumnMapping.detect(["ФИО", "Город"])


def test_mapping_naming_a_missing_column_lists_the_real_header() -> None:
    data = csv_bytes([RU_HEADER, *RU_ROWS])
    with pytest.raises(ColumnMappingError, match="'Сотовый' not in the file; its header has 'ID'"):
        parse_csv(data, ColumnMapping.parse("name=ФИО,phones=Телефон;Сотовый"))


def test_mapping_matches_headers_ignoring_case_and_spacing() -> None:
    data = csv_bytes([["  фио ", "ТЕЛЕФОН"], ["Иванов", "84951234567"]])
    parsed = parse_csv(data, ColumnMapping.parse("name=ФИО,phones=Телефон"))
    assert [(r.name, r.numbers) for r in parsed.rows] == [("Иванов", (("+74951234567", "work"),))]


# --- rows ----------------------------------------------------------------------------------


def test_valid_rows_carry_every_mapped_field() -> None:
    parsed = parse_csv(csv_bytes([RU_HEADER, *RU_ROWS]))
    first, second, third = parsed.rows
    assert first.row == 2
    assert first.external_id == "1"
    assert first.company == "ООО «Ромашка»"
    assert first.tier is Tier.A
    assert first.account_manager == "agent-7"
    assert first.numbers == (("+74951234567", "work"),)
    assert second.tier is Tier.B
    assert second.account_manager is None
    assert second.numbers == (("+74957654321", "work"), ("+79161112233", "mobile"))
    assert third.tier is Tier.C  # empty tier
    assert third.company is None


def test_unmapped_columns_are_none_meaning_keep() -> None:
    data = csv_bytes([["ФИО", "Телефон"], ["Иванов", "84951234567"]])
    (row,) = parse_csv(data).rows
    assert row.tier is None and row.company is None and row.external_id is None


def test_several_numbers_in_one_cell_and_repeats_across_columns() -> None:
    data = csv_bytes(
        [
            ["ФИО", "Телефон", "Мобильный"],
            ["Иванов", "8 495 1234567; +7 495 7654321, доб. 12", "+7 495 123-45-67, 89161112233"],
        ]
    )
    (row,) = parse_csv(data).rows
    assert row.numbers == (
        ("+74951234567", "work"),
        ("+74957654321", "work"),
        ("+79161112233", "mobile"),
    )


def test_each_skip_reason() -> None:
    header = ["ID", "ФИО", "Категория", "Телефон"]
    rows = [
        ["1", "", "A", "84951234567"],  # 2: no name
        ["2", "Без номера", "A", ""],  # 3: no phone
        ["3", "Плохой номер", "A", "123-45-67"],  # 4: no valid phone
        ["4", "Золотой", "Gold", "84951111111"],  # 5: unknown tier
        ["5", "Дубль один", "B", "84952222222"],  # 6: duplicate number with 7
        ["6", "Дубль два", "B", "+7 495 222-22-22"],  # 7
        ["7", "Один ID", "C", "84953333333"],  # 8: duplicate CRM id with 9
        ["7", "Тот же ID", "C", "84954444444"],  # 9
        ["8", "Сдвиг", "A", "84955555555", "лишнее"],  # 10: too many cells
        ["9", "Хороший", "vip", "84956666666"],  # 11: imported
    ]
    parsed = parse_csv(csv_bytes([header, *rows]))
    reasons = by_row(parsed.skipped)
    assert reasons == {
        2: "no name",
        3: "no phone number",
        4: "no valid phone number ('123-45-67')",
        5: "unknown tier 'Gold' (use A, B, C or VIP; empty means C)",
        6: "number +74952222222 also on row 7",
        7: "number +74952222222 also on row 6",
        8: "CRM id '7' also on row 9",
        9: "CRM id '7' also on row 8",
        10: "5 cells but the header has 4 (a value with an unquoted delimiter?)",
    }
    assert parsed.duplicates == {"+74952222222": (6, 7)}
    assert [(r.row, r.name, r.tier) for r in parsed.rows] == [(11, "Хороший", Tier.A)]
    assert parsed.data_rows == 10


def test_a_number_on_three_rows_names_the_others_on_each() -> None:
    data = csv_bytes(
        [["ФИО", "Телефон"], ["A", "84951234567"], ["B", "74951234567"], ["C", "+74951234567"]]
    )
    parsed = parse_csv(data)
    assert parsed.rows == []
    assert by_row(parsed.skipped) == {
        2: "number +74951234567 also on row 3, 4",
        3: "number +74951234567 also on row 2, 4",
        4: "number +74951234567 also on row 2, 3",
    }


def test_an_invalid_number_beside_a_valid_one_is_a_warning() -> None:
    data = csv_bytes([["ФИО", "Телефон"], ["Иванов", "84951234567; 12345"]])
    parsed = parse_csv(data)
    assert [r.numbers for r in parsed.rows] == [(("+74951234567", "work"),)]
    assert parsed.warnings == [(2, "ignored invalid number '12345'; kept the others")]
    assert parsed.skipped == []


def test_blank_lines_and_short_rows() -> None:
    text = "ФИО;Телефон;Примечание\r\n\r\n;;\r\nИванов;84951234567\r\n"
    parsed = parse_csv(text.encode())
    assert parsed.data_rows == 1
    assert [(r.row, r.notes) for r in parsed.rows] == [(4, None)]


def test_control_characters_and_overlong_names_are_cleaned() -> None:
    data = csv_bytes([["ФИО", "Телефон"], ["Ива\x00нов" + "я" * 500, "84951234567"]])
    (row,) = parse_csv(data).rows
    assert row.name.startswith("Иванов") and len(row.name) == 200


def test_multiline_quoted_cell_counts_as_one_row() -> None:
    text = 'ФИО,Примечание,Телефон\r\nИванов,"две\r\nстроки",84951234567\r\n,x,\r\n'
    parsed = parse_csv(text.encode())
    assert [r.row for r in parsed.rows] == [2]
    assert by_row(parsed.skipped) == {3: "no name"}


def test_default_region_applies_to_national_numbers() -> None:
    data = csv_bytes([["Name", "Phone"], ["Smith", "020 7946 0958"]])
    (row,) = parse_csv(data, default_region="GB").rows
    assert row.numbers == (("+442079460958", "work"),)


def test_report_render_lists_skips_warnings_and_moves() -> None:
    report = ImportReport(
        imported=2,
        updated=1,
        skipped=[(4, "no name")],
        duplicates={},
        warnings=[(5, "ignored invalid number '1'; kept the others")],
        moved=[("+74951234567", "'Old' (x)", 6)],
        data_rows=5,
        encoding="cp1251",
        delimiter=";",
        mapping="name=ФИО,phones=Телефон:work",
        dry_run=True,
    )
    assert report.render().splitlines() == [
        "dry run, nothing written: 2 imported, 1 updated, 1 skipped of 5 rows",
        "file: cp1251, delimiter ';', columns name=ФИО,phones=Телефон:work",
        "skipped rows:",
        "  row 4: no name",
        "numbers moved from another contact:",
        "  +74951234567 from 'Old' (x) (row 6)",
        "warnings:",
        "  row 5: ignored invalid number '1'; kept the others",
    ]


def test_repeated_headers_are_numbered_and_all_read() -> None:
    data = csv_bytes(
        [["ФИО", "Телефон", "Телефон", ""], ["Иванов", "84951234567", "84957654321", "x"]]
    )
    parsed = parse_csv(data)
    assert [p.header for p in parsed.mapping.phones] == ["Телефон", "Телефон (2)"]
    assert [n for n, _ in parsed.rows[0].numbers] == ["+74951234567", "+74957654321"]
    mapped = parse_csv(data, ColumnMapping.parse("name=ФИО,phones=Телефон (2)"))
    assert [n for n, _ in mapped.rows[0].numbers] == ["+74957654321"]
