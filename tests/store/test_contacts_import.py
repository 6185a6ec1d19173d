"""CSV import into the contacts directory and lookup by number, against real PostgreSQL."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from pbx_service.calls.queueing import Tier
from pbx_service.contacts import (
    ColumnMapping,
    ColumnMappingError,
    ContactFileError,
    ParsedCsv,
    import_contacts,
    import_parsed,
    lookup,
)
from pbx_service.contacts.directory import LOOKUP_SQL
from pbx_service.contacts.importer import ContactRow
from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.errors import DatabaseUnavailableError, StoreError
from tests.store.helpers import UNREACHABLE_URL, fetch

HEADER = ["ID", "ФИО", "Компания", "Категория", "Менеджер", "Телефон", "Мобильный", "Примечание"]
CUSTOMERS = [
    ["101", "Иванов Иван Иванович", "ООО «Ромашка»", "A", "agent-7", "8 (495) 123-45-67",
     "8 916 111-22-33", "звонит по утрам"],
    ["102", "Петрова Анна", "АО «Лютик», филиал", "b", "", "+7 495 7654321; 8 495 765-43-22",
     "", ""],
    ["103", "Сидоров Пётр", "", "", "PJSIP/205", "74959998877", "+7 (903) 000-11-22", ""],
    ["104", "Smith John", "Acme Ltd", "VIP", "agent-1", "+44 20 7946 0958", "", "English"],
]  # fmt: skip


def write_csv(
    path: Path,
    rows: list[list[str]],
    *,
    header: list[str] = HEADER,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
) -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows([header, *rows])
    data = buf.getvalue().encode(encoding)
    path.write_bytes((codecs.BOM_UTF8 + data) if bom else data)
    return path


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def table_state(url: str) -> dict[str, list[tuple[Any, ...]]]:
    contacts = await fetch(
        url,
        "SELECT id, name, company, tier, account_manager, notes, external_id, created_at, "
        "updated_at FROM contacts ORDER BY id",
    )
    numbers = await fetch(
        url, "SELECT contact_id, number, kind FROM contact_numbers ORDER BY number"
    )
    return {"contacts": [tuple(r) for r in contacts], "numbers": [tuple(r) for r in numbers]}


async def count(url: str) -> tuple[int, int]:
    [row] = await fetch(
        url,
        "SELECT (SELECT count(*) FROM contacts) AS c, (SELECT count(*) FROM contact_numbers) AS n",
    )
    return int(row["c"]), int(row["n"])


@pytest.mark.parametrize(
    ("delimiter", "encoding", "bom"),
    [(",", "utf-8", True), (";", "cp1251", False), (";", "utf-8", False)],
)
async def test_import_then_lookup_by_every_spelling(
    database_url: str, tmp_path: Path, delimiter: str, encoding: str, bom: bool
) -> None:
    path = write_csv(
        tmp_path / "crm.csv", CUSTOMERS, delimiter=delimiter, encoding=encoding, bom=bom
    )
    report = await import_contacts(database_url, path, None)
    assert (report.imported, report.updated, report.skipped) == (4, 0, [])
    assert report.delimiter == delimiter
    assert report.encoding == ("utf-8-sig" if bom else encoding)
    assert await count(database_url) == (4, 7)

    for spelling in ("8 (495) 123-45-67", "+7 495 1234567", "74951234567", "84951234567"):
        contact = await lookup(database_url, spelling)
        assert contact is not None, spelling
        assert contact.name == "Иванов Иван Иванович"
        assert contact.company == "ООО «Ромашка»"
        assert contact.tier is Tier.A
        assert contact.account_manager == "agent-7"
        assert contact.external_id == "101"
        assert contact.notes == "звонит по утрам"
        assert contact.numbers == ("+74951234567", "+79161112233")
    mobile = await lookup(database_url, "89161112233")
    assert mobile is not None and mobile.name == "Иванов Иван Иванович"

    anna = await lookup(database_url, "+7 (495) 765-43-22")
    assert anna is not None
    assert (anna.tier, anna.company, anna.account_manager) == (
        Tier.B,
        "АО «Лютик», филиал",
        None,
    )
    assert anna.numbers == ("+74957654321", "+74957654322")
    petr = await lookup(database_url, "8-903-000-11-22")
    assert petr is not None and petr.tier is Tier.C  # empty tier → C
    assert petr.account_manager == "PJSIP/205"
    smith = await lookup(database_url, "+442079460958")
    assert smith is not None and smith.tier is Tier.A  # VIP → A

    kinds = await fetch(database_url, "SELECT number, kind FROM contact_numbers ORDER BY 1")
    assert {r["number"]: r["kind"] for r in kinds}["+79161112233"] == "mobile"
    assert {r["number"]: r["kind"] for r in kinds}["+74951234567"] == "work"


async def test_lookup_of_unknown_and_anonymous_callers(database_url: str, tmp_path: Path) -> None:
    await import_contacts(database_url, write_csv(tmp_path / "crm.csv", CUSTOMERS), None)
    assert await lookup(database_url, "+74950000000") is None
    assert await lookup(database_url, "anonymous") is None
    assert await lookup(database_url, "") is None
    assert await lookup(database_url, "x" * 5000) is None


async def test_reimport_updates_and_does_not_duplicate(database_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "crm.csv", CUSTOMERS)
    await import_contacts(database_url, path, None)
    before = await table_state(database_url)

    again = await import_contacts(database_url, path, None)
    assert (again.imported, again.updated, again.skipped) == (0, 4, [])
    after = await table_state(database_url)
    assert await count(database_url) == (4, 7)
    # Same ids, same data; only updated_at moved.
    assert [c[:8] for c in after["contacts"]] == [c[:8] for c in before["contacts"]]
    assert after["numbers"] == before["numbers"]


async def test_reimport_applies_changes_from_the_crm(database_url: str, tmp_path: Path) -> None:
    await import_contacts(database_url, write_csv(tmp_path / "v1.csv", CUSTOMERS), None)
    first = await lookup(database_url, "84951234567")
    assert first is not None
    changed = [row[:] for row in CUSTOMERS]
    changed[0][1] = "Иванов И. И."
    changed[0][3] = "C"
    changed[0][6] = ""  # the mobile is gone
    changed[1][5] = "+7 495 7654321"  # Anna lost her second number...
    changed[2][6] = "+7 (903) 000-11-22; 8 495 765-43-22"  # ...which Пётр now has
    report = await import_contacts(database_url, write_csv(tmp_path / "v2.csv", changed), None)
    assert (report.imported, report.updated, report.skipped) == (0, 4, [])

    ivanov = await lookup(database_url, "84951234567")
    assert ivanov is not None
    assert (ivanov.id, ivanov.name, ivanov.tier) == (first.id, "Иванов И. И.", Tier.C)
    assert ivanov.numbers == ("+74951234567",)
    assert await lookup(database_url, "89161112233") is None
    moved = await lookup(database_url, "84957654322")
    assert moved is not None and moved.name == "Сидоров Пётр"


async def test_reimport_without_ids_matches_by_number(database_url: str, tmp_path: Path) -> None:
    no_ids = [row[1:] for row in CUSTOMERS]
    path = write_csv(tmp_path / "crm.csv", no_ids, header=HEADER[1:])
    await import_contacts(database_url, path, None)
    again = await import_contacts(database_url, path, None)
    assert (again.imported, again.updated, again.skipped) == (0, 4, [])
    assert await count(database_url) == (4, 7)
    # A later export with CRM ids links the same contacts instead of duplicating them.
    with_ids = await import_contacts(database_url, write_csv(tmp_path / "ids.csv", CUSTOMERS))
    assert (with_ids.imported, with_ids.updated) == (0, 4)
    ivanov = await lookup(database_url, "84951234567")
    assert ivanov is not None and ivanov.external_id == "101"


async def test_unmapped_columns_keep_their_stored_values(database_url: str, tmp_path: Path) -> None:
    await import_contacts(database_url, write_csv(tmp_path / "full.csv", CUSTOMERS), None)
    slim = [[row[0], row[1] + " (new)", row[5]] for row in CUSTOMERS]
    path = write_csv(tmp_path / "slim.csv", slim, header=["ID", "ФИО", "Телефон"])
    report = await import_contacts(database_url, path, None)
    assert report.updated == 4
    ivanov = await lookup(database_url, "84951234567")
    assert ivanov is not None
    assert ivanov.name == "Иванов Иван Иванович (new)"
    assert (ivanov.tier, ivanov.company, ivanov.account_manager, ivanov.notes) == (
        Tier.A,
        "ООО «Ромашка»",
        "agent-7",
        "звонит по утрам",
    )
    # The file is the truth for numbers: the mobile column is gone, so is the mobile.
    assert ivanov.numbers == ("+74951234567",)


async def test_broken_rows_are_reported_and_good_rows_imported(
    database_url: str, tmp_path: Path
) -> None:
    rows = [
        *CUSTOMERS,
        ["201", "", "X", "A", "", "84950000001", "", ""],  # row 6: no name
        ["202", "Нет номера", "X", "A", "", "", "", ""],  # row 7
        ["203", "Плохой номер", "X", "A", "", "123-45-67", "", ""],  # row 8
        ["204", "Золото", "X", "Gold", "", "84950000004", "", ""],  # row 9
        ["205", "Дубль", "X", "B", "", "84950000005", "", ""],  # row 10
        ["206", "Дубль 2", "X", "B", "", "", "+7 495 000-00-05", ""],  # row 11
    ]
    report = await import_contacts(database_url, write_csv(tmp_path / "crm.csv", rows), None)
    assert report.imported == 4
    assert [r for r, _ in report.skipped] == [6, 7, 8, 9, 10, 11]
    assert dict(report.skipped)[10] == "number +74950000005 also on row 11"
    assert report.duplicates == {"+74950000005": (10, 11)}
    assert await count(database_url) == (4, 7)
    assert await lookup(database_url, "84950000005") is None
    text = report.render()
    assert "4 imported, 0 updated, 6 skipped of 10 rows" in text
    assert "  row 9: unknown tier 'Gold'" in text


async def test_number_owned_by_another_contact_is_reported_or_moved_with_replace(
    database_url: str, tmp_path: Path
) -> None:
    await import_contacts(database_url, write_csv(tmp_path / "crm.csv", CUSTOMERS), None)
    ivanov = await lookup(database_url, "84951234567")
    assert ivanov is not None
    newcomer = [["900", "Новиков", "", "B", "", "8 495 123 45 67", "", ""]]
    path = write_csv(tmp_path / "new.csv", newcomer)

    report = await import_contacts(database_url, path, None)
    assert report.imported == 0
    [(row, reason)] = report.skipped
    assert row == 2
    assert reason.startswith("number +74951234567 belongs to another contact")
    assert "'Иванов Иван Иванович'" in reason and "CRM id '101'" in reason
    assert await lookup(database_url, "84951234567") == ivanov

    replaced = await import_contacts(database_url, path, None, replace=True)
    assert (replaced.imported, replaced.skipped) == (1, [])
    assert [(n, r) for n, _, r in replaced.moved] == [("+74951234567", 2)]
    owner = await lookup(database_url, "84951234567")
    assert owner is not None and owner.name == "Новиков"
    still = await lookup(database_url, "89161112233")
    assert still is not None and still.id == ivanov.id
    assert still.numbers == ("+79161112233",)


async def test_dry_run_reports_exactly_and_writes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    await import_contacts(database_url, write_csv(tmp_path / "v1.csv", CUSTOMERS[:2]), None)
    before = await table_state(database_url)
    path = write_csv(tmp_path / "v2.csv", CUSTOMERS)
    dry = await import_contacts(database_url, path, None, dry_run=True)
    assert (dry.imported, dry.updated, dry.dry_run) == (2, 2, True)
    assert dry.render().startswith("dry run, nothing written: 2 imported, 2 updated")
    assert await table_state(database_url) == before
    real = await import_contacts(database_url, path, None)
    assert (real.imported, real.updated, real.skipped) == (dry.imported, dry.updated, [])


async def test_an_error_mid_import_leaves_the_tables_unchanged(
    database_url: str, tmp_path: Path
) -> None:
    await import_contacts(database_url, write_csv(tmp_path / "v1.csv", CUSTOMERS[:2]), None)
    before = await table_state(database_url)
    # PostgreSQL itself fails the import at its last statement (the numbers), after the
    # contacts were already updated and inserted in the same transaction.
    await execute(
        database_url,
        """
        CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'boom on %', NEW.number; END $$;
        CREATE TRIGGER boom BEFORE INSERT ON contact_numbers FOR EACH ROW
        WHEN (NEW.number = '+442079460958') EXECUTE FUNCTION boom();
        """,
    )
    changed = [[*row[:1], row[1] + " v2", *row[2:]] for row in CUSTOMERS]
    with pytest.raises(StoreError, match="boom on \\+442079460958"):
        await import_contacts(database_url, write_csv(tmp_path / "v2.csv", changed), None)
    assert await table_state(database_url) == before


async def test_explicit_mapping_with_split_name(database_url: str, tmp_path: Path) -> None:
    header = ["Код", "Фамилия", "Имя", "Телефон раб.", "Сотовый"]
    rows = [["7", "Кузнецова", "Мария", "", "8 (926) 555-44-33"]]
    path = write_csv(tmp_path / "crm.csv", rows, header=header, delimiter=";", encoding="cp1251")
    mapping = ColumnMapping.parse("name=Фамилия+Имя,id=Код,phones=Телефон раб.;Сотовый")
    report = await import_contacts(database_url, path, mapping)
    assert report.imported == 1
    maria = await lookup(database_url, "+79265554433")
    assert maria is not None
    assert (maria.name, maria.external_id, maria.tier) == ("Кузнецова Мария", "7", Tier.C)


async def test_bad_files_and_mappings_raise_before_touching_the_database(
    tmp_path: Path,
) -> None:
    with pytest.raises(ContactFileError, match="cannot read"):
        await import_contacts(UNREACHABLE_URL, tmp_path / "missing.csv", None)
    path = write_csv(tmp_path / "crm.csv", CUSTOMERS)
    with pytest.raises(ColumnMappingError, match="'Phone' not in the file"):
        await import_contacts(UNREACHABLE_URL, path, ColumnMapping.parse("name=ФИО,phones=Phone"))


async def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "crm.csv", CUSTOMERS)
    with pytest.raises(DatabaseUnavailableError):
        await import_contacts(UNREACHABLE_URL, path, None)
    with pytest.raises(DatabaseUnavailableError):
        await lookup(UNREACHABLE_URL, "84951234567")


async def test_lookup_is_an_index_probe(database_url: str) -> None:
    await execute(
        database_url,
        """
        INSERT INTO contacts (id, name, tier, created_at, updated_at)
        SELECT md5(i::text)::uuid, 'c' || i, 'B', now(), now() FROM generate_series(1, 20000) i;
        INSERT INTO contact_numbers (contact_id, number, kind)
        SELECT md5(i::text)::uuid, '+7495' || lpad(i::text, 7, '0'), 'work'
        FROM generate_series(1, 20000) i;
        ANALYZE contacts; ANALYZE contact_numbers;
        """,
    )
    plan = await fetch(database_url, f"EXPLAIN {LOOKUP_SQL}", "+74950012345")
    text = "\n".join(r[0] for r in plan)
    assert "uq_contact_numbers_number" in text, text
    assert "Seq Scan" not in text, text
    found = await lookup(database_url, "8 495 001-23-45")
    assert found is not None and found.name == "c12345"


async def test_an_export_bigger_than_the_statement_parameter_limit(database_url: str) -> None:
    # 33,000 numbers: more than the 32,767 parameters one PostgreSQL statement may take.
    mapping = ColumnMapping.parse("name=ФИО,phones=Телефон")
    rows = [
        ContactRow(
            row=i + 2,
            name=f"Клиент {i}",
            numbers=((f"+7495{i:07d}", "work"), (f"+7916{i:07d}", "mobile")),
        )
        for i in range(16_500)
    ]
    parsed = ParsedCsv(
        rows=rows,
        skipped=[],
        warnings=[],
        duplicates={},
        mapping=mapping,
        encoding="utf-8",
        delimiter=",",
        data_rows=len(rows),
    )
    report = await import_parsed(database_url, parsed)
    assert (report.imported, report.skipped) == (16_500, [])
    again = await import_parsed(database_url, parsed)
    assert (again.imported, again.updated) == (0, 16_500)
    assert await count(database_url) == (16_500, 33_000)
    found = await lookup(database_url, "8 916 001-64-99")
    assert found is not None and found.name == "Клиент 16499"
