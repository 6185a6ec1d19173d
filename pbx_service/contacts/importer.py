"""Import a CRM's CSV export into the contacts directory.

Three steps, the first two pure:

1. `parse_csv` (bytes → valid rows + rows skipped and why): encoding (UTF-8 with or without
   BOM, UTF-16 with BOM, cp1251) and delimiter (``,`` ``;`` tab) are detected; columns come
   from a `ColumnMapping` or are recognised by their headers; numbers are normalised to
   E.164; a number or CRM id on two rows skips both rows.
2. `plan_import` (valid rows + what the database already holds → inserts, updates, moves,
   conflicts).
3. `import_contacts` runs both and applies the plan in ONE transaction: nothing is
   half-imported; a dry run applies it and rolls back, so its report is exact.

Row numbers in reports are the ones a spreadsheet shows: the header is row 1.

Which existing contact a row updates:
- the one with the row's CRM id (``id`` column), when there is one;
- otherwise, when the row's numbers belong to exactly one existing contact (and that contact
  has no other CRM id), that contact: re-importing a file without ids updates, it does not
  duplicate, and an id-less contact imported earlier gets linked to its CRM id;
- otherwise a new contact.
An updated contact's numbers become exactly the row's numbers; columns the mapping does not
name (company, tier, manager, notes) keep their stored values.

A row's number that another contact owns is a conflict: the row is skipped, unless that
contact is itself updated by this file without that number (the number moved in the CRM), or
``replace=True`` (the file wins: the number moves to the row's contact).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BindParameter,
    Text,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from pbx_service.calls.numbers import clean_text
from pbx_service.calls.queueing import Tier
from pbx_service.contacts.errors import ColumnMappingError, ContactFileError
from pbx_service.contacts.model import normalise_number, parse_tier, split_numbers
from pbx_service.store.connect import connect
from pbx_service.store.contacts_models import Contact as ContactTable
from pbx_service.store.contacts_models import ContactNumber as ContactNumberTable

# Bounds on what one cell may put in the database (CRM exports carry odd things).
MAX_NAME = 200
MAX_COMPANY = 200
MAX_MANAGER = 100
MAX_EXTERNAL_ID = 100
MAX_NOTES = 2000
MAX_KIND = 20

_SPEC_KEYS: dict[str, str] = {
    "name": "name",
    "company": "company",
    "tier": "tier",
    "manager": "manager",
    "account_manager": "manager",
    "id": "external_id",
    "external_id": "external_id",
    "notes": "notes",
    "phones": "phones",
    "phone": "phones",
    "numbers": "phones",
}


def _header_key(header: str) -> str:
    """How headers are compared: case, surrounding blanks, BOM and inner spacing ignored."""
    return " ".join(header.replace("\ufeff", "").split()).casefold()


# Recognised headers (compared with `_header_key`), for files imported without a mapping.
_NAME_HEADERS = ("name", "full name", "fullname", "contact", "contact name", "фио", "ф.и.о.",
                 "ф. и. о.", "контакт", "контактное лицо")  # fmt: skip
_SURNAME_HEADERS = ("фамилия", "last name", "surname")
_FIRST_NAME_HEADERS = ("имя", "first name")
_PATRONYMIC_HEADERS = ("отчество", "middle name")
# Not "клиент": some CRMs put the person's name under it; better to ask for a mapping.
_COMPANY_HEADERS = ("company", "company name", "organization", "organisation", "account",
                    "account name", "компания", "организация", "контрагент")  # fmt: skip
_TIER_HEADERS = ("tier", "category", "level", "segment", "категория", "уровень", "класс",
                 "сегмент")  # fmt: skip
_MANAGER_HEADERS = ("manager", "account manager", "owner", "менеджер", "ответственный",
                    "ответственный менеджер", "аккаунт-менеджер",
                    "персональный менеджер")  # fmt: skip
_ID_HEADERS = ("id", "external id", "crm id", "код", "ид", "id клиента", "код клиента")
_NOTES_HEADERS = ("notes", "note", "comment", "comments", "примечание", "примечания",
                  "комментарий")  # fmt: skip
# Phone columns: a header starting with one of these (so "Телефон 2" counts) gives the kind.
_PHONE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("мобильный", "mobile"),
    ("сотовый", "mobile"),
    ("mobile", "mobile"),
    ("cell", "mobile"),
    ("домашний", "home"),
    ("home phone", "home"),
    ("факс", "fax"),
    ("fax", "fax"),
    ("рабочий телефон", "work"),
    ("work phone", "work"),
    ("телефон", "work"),
    ("phone", "work"),
    ("telephone", "work"),
    ("tel", "work"),
    ("номер", "work"),
)


def phone_kind_for(header: str) -> str | None:
    """The kind of number a column with this header holds, None if it is not a phone column."""
    key = _header_key(header)
    for prefix, kind in _PHONE_PREFIXES:
        if key.startswith(prefix):
            return kind
    return None


@dataclass(frozen=True, slots=True)
class PhoneColumn:
    """A CSV column holding one or more numbers of one kind (work, mobile, ...)."""

    header: str
    kind: str = "work"


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which CSV column holds what. Header names compare case-insensitively.

    ``name`` may be several columns joined with a space (surname, first name, patronymic).
    """

    name: tuple[str, ...]
    phones: tuple[PhoneColumn, ...]
    company: str | None = None
    tier: str | None = None
    manager: str | None = None
    external_id: str | None = None
    notes: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ColumnMapping:
        """Parse the CLI's ``--map``: comma-separated ``key=Column`` pairs.

        Keys: ``name`` (several columns joined with ``+``), ``phones`` (several columns
        separated by ``;``, each optionally ``Column:kind``, the kind otherwise guessed from
        the header, default ``work``), ``company``, ``tier``, ``manager``, ``id`` (the CRM
        id), ``notes``. ``name`` and ``phones`` are required. Example::

            name=ФИО,company=Компания,tier=Категория,phones=Телефон;Мобильный:mobile,id=ID
        """
        values: dict[str, str] = {}
        for part in spec.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip().casefold(), value.strip()
            if not sep or not value:
                raise ColumnMappingError(
                    f"column mapping part {part.strip()!r} is not key=Column "
                    f"(example: name=ФИО,phones=Телефон;Мобильный)"
                )
            field_name = _SPEC_KEYS.get(key)
            if field_name is None:
                raise ColumnMappingError(
                    f"unknown key {key!r} in the column mapping; use "
                    "name, company, tier, manager, id, notes, phones"
                )
            if field_name in values:
                raise ColumnMappingError(f"{key!r} appears twice in the column mapping")
            values[field_name] = value
        missing = [k for k in ("name", "phones") if k not in values]
        if missing:
            raise ColumnMappingError(
                f"the column mapping needs {' and '.join(missing)} "
                "(example: name=ФИО,phones=Телефон;Мобильный)"
            )
        names = tuple(n.strip() for n in values["name"].split("+") if n.strip())
        phones: list[PhoneColumn] = []
        for item in values["phones"].split(";"):
            header, _, kind = item.strip().partition(":")
            header, kind = header.strip(), kind.strip().casefold()
            if not header:
                continue
            if len(kind) > MAX_KIND:
                raise ColumnMappingError(f"number kind {kind!r} is longer than {MAX_KIND}")
            phones.append(PhoneColumn(header, kind or phone_kind_for(header) or "work"))
        if not names or not phones:
            raise ColumnMappingError("name and phones must each name at least one column")
        return cls(
            name=names,
            phones=tuple(phones),
            company=values.get("company"),
            tier=values.get("tier"),
            manager=values.get("manager"),
            external_id=values.get("external_id"),
            notes=values.get("notes"),
        )

    @classmethod
    def detect(cls, headers: Sequence[str]) -> ColumnMapping:
        """Recognise the columns of a CRM export by their headers (English or Russian).

        Raises `ColumnMappingError`, listing the headers found, when no name or no phone
        column is recognised.
        """
        keyed = {_header_key(h): h for h in reversed(headers) if h.strip()}

        def first(candidates: Iterable[str]) -> str | None:
            return next((keyed[c] for c in candidates if c in keyed), None)

        name: tuple[str, ...] = ()
        full = first(_NAME_HEADERS)
        surname = first(_SURNAME_HEADERS)
        if full is not None:
            name = (full,)
        elif surname is not None:
            parts = (surname, first(_FIRST_NAME_HEADERS), first(_PATRONYMIC_HEADERS))
            name = tuple(p for p in parts if p is not None)
        elif (given := first(_FIRST_NAME_HEADERS)) is not None:
            name = (given,)
        phones = tuple(
            PhoneColumn(h, kind)
            for h in headers
            if h.strip() and (kind := phone_kind_for(h)) is not None
        )
        if not name or not phones:
            lacking = " and ".join(
                what for what, ok in (("a name", bool(name)), ("a phone", bool(phones))) if not ok
            )
            raise ColumnMappingError(
                f"no column recognised as {lacking} among the headers "
                f"{', '.join(repr(h) for h in headers)}; say which with a mapping like "
                "name=ФИО,phones=Телефон;Мобильный"
            )
        return cls(
            name=name,
            phones=phones,
            company=first(_COMPANY_HEADERS),
            tier=first(_TIER_HEADERS),
            manager=first(_MANAGER_HEADERS),
            external_id=first(_ID_HEADERS),
            notes=first(_NOTES_HEADERS),
        )

    def columns(self) -> list[str]:
        """Every column the mapping names."""
        optional = (self.company, self.tier, self.manager, self.external_id, self.notes)
        return [*self.name, *(p.header for p in self.phones), *(c for c in optional if c)]

    def describe(self) -> str:
        """The mapping in `parse` syntax, for reports."""
        parts = [f"name={'+'.join(self.name)}"]
        for key, value in (
            ("company", self.company),
            ("tier", self.tier),
            ("manager", self.manager),
            ("id", self.external_id),
            ("notes", self.notes),
        ):
            if value:
                parts.append(f"{key}={value}")
        parts.append("phones=" + ";".join(f"{p.header}:{p.kind}" for p in self.phones))
        return ",".join(parts)


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One valid row of the file. ``numbers`` are ``(E.164, kind)`` pairs, no repeats.

    Optional fields are None when their cell is empty or the mapping has no such column;
    an update writes only the mapped columns (`ImportPlan`), so unmapped means "keep what is
    stored". ``tier`` is None only when unmapped (a new contact then gets C).
    """

    row: int
    name: str
    numbers: tuple[tuple[str, str], ...]
    tier: Tier | None = None
    company: str | None = None
    account_manager: str | None = None
    external_id: str | None = None
    notes: str | None = None


@dataclass(slots=True)
class ParsedCsv:
    """What `parse_csv` made of a file."""

    rows: list[ContactRow]
    skipped: list[tuple[int, str]]
    warnings: list[tuple[int, str]]
    # A number found on several rows → those rows (all skipped).
    duplicates: dict[str, tuple[int, ...]]
    mapping: ColumnMapping
    encoding: str
    delimiter: str
    data_rows: int


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding used: the given one, else a BOM's (UTF-8, UTF-16),
    else UTF-8 if it decodes, else cp1251 (what Russian Excel writes)."""
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except LookupError as exc:
            raise ContactFileError(f"unknown encoding {encoding!r}") from exc
        except UnicodeDecodeError as exc:
            raise ContactFileError(
                f"the file is not valid {encoding} (byte {exc.start}); omit the encoding to "
                "detect it"
            ) from exc
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ContactFileError(
            "this is an Excel workbook, not CSV: save it as 'CSV UTF-8' or 'CSV (разделители - "
            "запятые)' first"
        )
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for candidate in ("utf-8", "cp1251"):
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise ContactFileError(
        "cannot tell the file's encoding (neither UTF-8 nor cp1251); pass it explicitly"
    )


_DELIMITERS = (";", ",", "\t")


def sniff_delimiter(text_: str) -> str:
    """``;``, ``,`` or tab: the one that splits the header into the most columns and the
    first rows into the same number of columns as the header."""
    sample = text_[:65536].splitlines()[:20]
    best, best_score = ",", (-1, -1.0)
    for delimiter in _DELIMITERS:
        rows = list(csv.reader(sample, delimiter=delimiter))
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        body = [r for r in rows[1:] if any(c.strip() for c in r)]
        consistent = sum(len(r) == width for r in body) / len(body) if body else 1.0
        score = (1 if consistent >= 0.5 else 0, consistent * width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _distinct_headers(raw: Sequence[str]) -> list[str]:
    """The header row with repeats numbered: CRMs export "Телефон", "Телефон", and the
    second becomes "Телефон (2)" (which a mapping can name)."""
    headers: list[str] = []
    seen: set[str] = set()
    for cell in raw:
        header = cell.replace("\ufeff", "").strip()
        candidate, n = header, 1
        while _header_key(candidate) in seen:
            n += 1
            candidate = f"{header} ({n})"
        seen.add(_header_key(candidate))
        headers.append(candidate)
    return headers


def _cell(record: Sequence[str], index: dict[str, int], header: str | None) -> str | None:
    """The stripped cell of ``header``; None when the mapping has no such column."""
    if header is None:
        return None
    i = index[_header_key(header)]
    return record[i].strip() if i < len(record) else ""


def _bounded(value: str | None, limit: int) -> str | None:
    return clean_text(value, limit) if value is not None else None


def parse_csv(
    data: bytes,
    mapping: ColumnMapping | None = None,
    *,
    default_region: str = "RU",
    encoding: str | None = None,
    delimiter: str | None = None,
) -> ParsedCsv:
    """Read a CRM export (no I/O): the valid rows, and every other row with the reason.

    Skip reasons: no name; no phone number; no valid phone number; unknown tier (A/B/C in
    any case, Latin or Cyrillic, and VIP → A are accepted; empty means C); more cells than
    the header (an unquoted delimiter shifted the columns); a number also on another row
    (both rows skipped: which contact owns it is for the CRM to settle); a CRM id also on
    another row (both skipped). An invalid number next to valid ones is a warning and the
    valid ones are kept. Blank lines are ignored.

    Raises `ContactFileError` for an unreadable file and `ColumnMappingError` when the
    mapping names a column the header lacks or no columns can be recognised.
    """
    text_, used_encoding = decode(data, encoding)
    if delimiter is None:
        delimiter = sniff_delimiter(text_)
    elif delimiter not in _DELIMITERS and len(delimiter) != 1:
        raise ContactFileError(f"delimiter must be one character, got {delimiter!r}")
    reader = csv.reader(io.StringIO(text_, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ContactFileError(f"not readable as CSV: {exc}") from exc
    header_at = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if header_at is None:
        raise ContactFileError("the file is empty: no header row")
    headers = _distinct_headers(records[header_at])
    index = {_header_key(h): i for i, h in enumerate(headers)}
    if mapping is None:
        mapping = ColumnMapping.detect(headers)
    absent = [c for c in mapping.columns() if _header_key(c) not in index]
    if absent:
        raise ColumnMappingError(
            f"column(s) {', '.join(repr(c) for c in absent)} not in the file; its header has "
            f"{', '.join(repr(h) for h in headers)}"
        )

    candidates: list[ContactRow] = []
    skipped: dict[int, str] = {}
    warnings: list[tuple[int, str]] = []
    data_rows = 0
    for offset, record in enumerate(records[header_at + 1 :], start=header_at + 2):
        if not any(c.strip() for c in record):
            continue
        data_rows += 1
        row = offset
        if len(record) > len(headers) and any(c.strip() for c in record[len(headers) :]):
            skipped[row] = (
                f"{len(record)} cells but the header has {len(headers)} "
                "(a value with an unquoted delimiter?)"
            )
            continue
        name = clean_text(
            " ".join(filter(None, (_cell(record, index, h) for h in mapping.name))), MAX_NAME
        )
        if not name:
            skipped[row] = "no name"
            continue
        tier: Tier | None = None
        raw_tier = _cell(record, index, mapping.tier)
        if raw_tier is not None:
            tier = parse_tier(raw_tier)
            if tier is None:
                skipped[row] = f"unknown tier {raw_tier!r} (use A, B, C or VIP; empty means C)"
                continue
        numbers: dict[str, str] = {}
        invalid: list[str] = []
        for column in mapping.phones:
            for piece in split_numbers(_cell(record, index, column.header)):
                e164 = normalise_number(piece, default_region)
                if e164 is None:
                    invalid.append(piece)
                else:
                    numbers.setdefault(e164, column.kind)
        if not numbers:
            skipped[row] = (
                f"no valid phone number ({', '.join(repr(p) for p in invalid)})"
                if invalid
                else "no phone number"
            )
            continue
        for piece in invalid:
            warnings.append((row, f"ignored invalid number {piece!r}; kept the others"))
        candidates.append(
            ContactRow(
                row=row,
                name=name,
                numbers=tuple(numbers.items()),
                tier=tier,
                company=_bounded(_cell(record, index, mapping.company), MAX_COMPANY),
                account_manager=_bounded(_cell(record, index, mapping.manager), MAX_MANAGER),
                external_id=_bounded(_cell(record, index, mapping.external_id), MAX_EXTERNAL_ID),
                notes=_bounded(_cell(record, index, mapping.notes), MAX_NOTES),
            )
        )

    by_number: dict[str, list[int]] = {}
    by_id: dict[str, list[int]] = {}
    for c in candidates:
        for number, _kind in c.numbers:
            by_number.setdefault(number, []).append(c.row)
        if c.external_id:
            by_id.setdefault(c.external_id, []).append(c.row)
    duplicates = {n: tuple(rows) for n, rows in by_number.items() if len(rows) > 1}
    reasons: dict[int, list[str]] = {}
    for number, rows in duplicates.items():
        for r in rows:
            others = ", ".join(str(o) for o in rows if o != r)
            reasons.setdefault(r, []).append(f"number {number} also on row {others}")
    for external_id, id_rows in by_id.items():
        if len(id_rows) > 1:
            for r in id_rows:
                others = ", ".join(str(o) for o in id_rows if o != r)
                reasons.setdefault(r, []).append(f"CRM id {external_id!r} also on row {others}")
    for r, why in reasons.items():
        skipped[r] = "; ".join(why)
    return ParsedCsv(
        rows=[c for c in candidates if c.row not in reasons],
        skipped=sorted(skipped.items()),
        warnings=warnings,
        duplicates=duplicates,
        mapping=mapping,
        encoding=used_encoding,
        delimiter=delimiter,
        data_rows=data_rows,
    )


@dataclass(frozen=True, slots=True)
class StoredContact:
    """What the plan needs to know of a contact already in the directory."""

    id: uuid.UUID
    name: str
    external_id: str | None


@dataclass(slots=True)
class ImportPlan:
    """What `apply` will do. ``moved`` lists numbers taken from another contact
    (``replace=True`` only) as ``(number, previous owner, row)``."""

    inserts: list[tuple[uuid.UUID, ContactRow]] = field(default_factory=list)
    updates: list[tuple[uuid.UUID, ContactRow]] = field(default_factory=list)
    moved: list[tuple[str, StoredContact, int]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _describe(contact: StoredContact) -> str:
    crm = f", CRM id {contact.external_id!r}" if contact.external_id else ""
    return f"{contact.name!r} ({contact.id}{crm})"


def plan_import(
    rows: Sequence[ContactRow],
    owners: Mapping[str, StoredContact],
    by_external_id: Mapping[str, StoredContact],
    *,
    replace: bool = False,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> ImportPlan:
    """Decide, without I/O, what each valid row does (see the module docstring).

    ``owners`` maps each of the rows' numbers already in the directory to its contact;
    ``by_external_id`` maps the rows' CRM ids already in the directory to their contact.
    The rows must be free of duplicate numbers and ids (`parse_csv` guarantees it).
    """
    targets: dict[int, uuid.UUID | None] = {}
    claimed: set[uuid.UUID] = set()
    for r in rows:
        if r.external_id and r.external_id in by_external_id:
            contact_id = by_external_id[r.external_id].id
            targets[r.row] = contact_id
            claimed.add(contact_id)
    for r in rows:
        if r.row in targets:
            continue
        found = {owners[n].id: owners[n] for n, _ in r.numbers if n in owners}
        if len(found) == 1:
            (only,) = found.values()
            id_free = r.external_id is None or only.external_id is None
            if id_free and only.id not in claimed:
                targets[r.row] = only.id
                claimed.add(only.id)
                continue
        targets[r.row] = None

    # A number owned by a contact this file updates, and not listed on that contact's row,
    # is released by the update. A skipped row releases nothing, so repeat until stable.
    active = {r.row: r for r in rows}
    conflicts: dict[int, str] = {}
    while True:
        updated = {t for row, t in targets.items() if row in active and t is not None}
        newly: dict[int, str] = {}
        for r in active.values():
            for number, _kind in r.numbers:
                owner = owners.get(number)
                if owner is None or owner.id == targets[r.row] or owner.id in updated:
                    continue
                if not replace:
                    newly[r.row] = (
                        f"number {number} belongs to another contact {_describe(owner)}; "
                        "import with replace to move it"
                    )
                    break
        if not newly:
            break
        conflicts.update(newly)
        for row in newly:
            del active[row]

    plan = ImportPlan(skipped=sorted(conflicts.items()))
    updated = {t for row, t in targets.items() if row in active and t is not None}
    for r in active.values():
        target = targets[r.row]
        if target is None:
            target = new_id()
            plan.inserts.append((target, r))
        else:
            plan.updates.append((target, r))
        for number, _kind in r.numbers:
            owner = owners.get(number)
            if owner is not None and owner.id != target and owner.id not in updated:
                plan.moved.append((number, owner, r.row))
    return plan


@dataclass(slots=True)
class ImportReport:
    """The outcome of one import. ``skipped`` holds ``(row, reason)`` sorted by row;
    ``duplicates`` maps a number found on several rows to those rows; ``moved`` lists
    ``(number, previous owner description, row)`` for numbers taken with ``replace``."""

    imported: int
    updated: int
    skipped: list[tuple[int, str]]
    duplicates: dict[str, tuple[int, ...]]
    warnings: list[tuple[int, str]]
    moved: list[tuple[str, str, int]]
    data_rows: int
    encoding: str
    delimiter: str
    mapping: str
    dry_run: bool

    def render(self) -> str:
        """Human-readable lines for the CLI."""
        delimiter = {"\t": "tab"}.get(self.delimiter, self.delimiter)
        head = "dry run, nothing written: " if self.dry_run else ""
        lines = [
            f"{head}{self.imported} imported, {self.updated} updated, "
            f"{len(self.skipped)} skipped of {self.data_rows} rows",
            f"file: {self.encoding}, delimiter {delimiter!r}, columns {self.mapping}",
        ]
        if self.skipped:
            lines.append("skipped rows:")
            lines.extend(f"  row {row}: {reason}" for row, reason in self.skipped)
        if self.moved:
            lines.append("numbers moved from another contact:")
            lines.extend(f"  {n} from {owner} (row {row})" for n, owner, row in self.moved)
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  row {row}: {message}" for row, message in self.warnings)
        return "\n".join(lines)


async def import_contacts(
    database_url: str,
    path: Path,
    mapping: ColumnMapping | None = None,
    *,
    default_region: str = "RU",
    dry_run: bool = False,
    replace: bool = False,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> ImportReport:
    """Import a CRM CSV export into the directory, in one transaction.

    ``mapping`` None: columns recognised by their headers (`ColumnMapping.detect`).
    ``dry_run``: everything is done and rolled back, so the report is exact and nothing
    changes. ``replace``: a number owned by another contact moves to the file's contact
    instead of skipping the row. Rows are skipped with a reason (`parse_csv`,
    `plan_import`); the others are all written or, on any error, none.

    Raises `ContactFileError` / `ColumnMappingError` for a bad file or mapping, and
    `StoreError` (`DatabaseUnavailableError`) when the database fails; nothing is written
    then. A directory cache (`ContactDirectory`) should be invalidated after an import.
    """
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ContactFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    # Parsing 20k rows takes seconds of CPU (phonenumbers): off the event loop, which in the
    # daemon also serves the ARI socket that Asterisk drops after 100 ms without a read.
    parsed = await asyncio.to_thread(
        parse_csv,
        data,
        mapping,
        default_region=default_region,
        encoding=encoding,
        delimiter=delimiter,
    )
    return await import_parsed(database_url, parsed, dry_run=dry_run, replace=replace)


async def import_parsed(
    database_url: str, parsed: ParsedCsv, *, dry_run: bool = False, replace: bool = False
) -> ImportReport:
    """Write what `parse_csv` returned, in one transaction (see `import_contacts`): for
    callers that have the bytes rather than a file (an upload in the ops web)."""
    async with _connect(database_url) as conn:
        # Leaving the block by an exception rolls back: nothing is half-imported.
        async with conn.begin() as transaction:
            plan = await _plan_in_db(conn, parsed, replace=replace)
            await _apply(conn, plan, parsed.mapping, now=datetime.now(UTC))
            if dry_run:
                await transaction.rollback()
    return ImportReport(
        imported=len(plan.inserts),
        updated=len(plan.updates),
        skipped=sorted(parsed.skipped + plan.skipped),
        duplicates=parsed.duplicates,
        warnings=parsed.warnings,
        moved=[(n, _describe(owner), row) for n, owner, row in plan.moved],
        data_rows=parsed.data_rows,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        mapping=parsed.mapping.describe(),
        dry_run=dry_run,
    )


def _connect(database_url: str) -> AbstractAsyncContextManager[AsyncConnection]:
    return connect(database_url, "contacts import")


def _array(values: Sequence[str]) -> BindParameter[Any]:
    # One array parameter, not one per value: a big export has more values than the
    # 32767 parameters a PostgreSQL statement may take.
    value: Any = list(values)
    return bindparam(None, value, type_=ARRAY(Text))


def _uuid_array(values: Sequence[uuid.UUID]) -> BindParameter[Any]:
    value: Any = list(values)
    return bindparam(None, value, type_=ARRAY(UUID(as_uuid=True)))


async def _plan_in_db(conn: AsyncConnection, parsed: ParsedCsv, *, replace: bool) -> ImportPlan:
    # Readers (the lookup at each call) go on; a second import waits for this one.
    await conn.execute(text("LOCK TABLE contacts, contact_numbers IN EXCLUSIVE MODE"))
    numbers = [n for r in parsed.rows for n, _ in r.numbers]
    ids = [r.external_id for r in parsed.rows if r.external_id]
    c, n = ContactTable, ContactNumberTable
    owners: dict[str, StoredContact] = {}
    if numbers:
        result = await conn.execute(
            select(n.number, c.id, c.name, c.external_id)
            .join(c, c.id == n.contact_id)
            .where(n.number == any_(_array(numbers)))
        )
        owners = {row.number: StoredContact(row.id, row.name, row.external_id) for row in result}
    by_external_id: dict[str, StoredContact] = {}
    if ids:
        result = await conn.execute(
            select(c.id, c.name, c.external_id).where(c.external_id == any_(_array(ids)))
        )
        by_external_id = {
            row.external_id: StoredContact(row.id, row.name, row.external_id) for row in result
        }
    return plan_import(parsed.rows, owners, by_external_id, replace=replace)


async def _apply(
    conn: AsyncConnection, plan: ImportPlan, mapping: ColumnMapping, *, now: datetime
) -> None:
    c, n = ContactTable, ContactNumberTable
    updated_ids = [contact_id for contact_id, _ in plan.updates]
    if updated_ids:
        # The file is the truth for the numbers of the contacts it updates.
        await conn.execute(delete(n).where(n.contact_id == any_(_uuid_array(updated_ids))))
    moved = [number for number, _, _ in plan.moved]
    if moved:
        await conn.execute(delete(n).where(n.number == any_(_array(moved))))
    if plan.updates:
        # Only the columns the file has; the others keep their stored values.
        values: dict[str, Any] = {
            "name": bindparam("p_name"),
            # A row without a CRM id keeps the id the contact has.
            "external_id": func.coalesce(bindparam("p_external_id"), c.external_id),
            "updated_at": bindparam("p_updated_at"),
        }
        optional = {
            "company": mapping.company,
            "tier": mapping.tier,
            "account_manager": mapping.manager,
            "notes": mapping.notes,
        }
        values.update({k: bindparam(f"p_{k}") for k, col in optional.items() if col})
        stmt = update(c).where(c.id == bindparam("p_id")).values(values)
        await conn.execute(
            stmt,
            [
                {
                    "p_id": contact_id,
                    "p_name": r.name,
                    "p_external_id": r.external_id,
                    "p_updated_at": now,
                    "p_company": r.company,
                    "p_tier": (r.tier or Tier.C).value,
                    "p_account_manager": r.account_manager,
                    "p_notes": r.notes,
                }
                for contact_id, r in plan.updates
            ],
        )
    if plan.inserts:
        await conn.execute(
            insert(c),
            [
                {
                    "id": contact_id,
                    "name": r.name,
                    "company": r.company,
                    "tier": (r.tier or Tier.C).value,
                    "account_manager": r.account_manager,
                    "notes": r.notes,
                    "external_id": r.external_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for contact_id, r in plan.inserts
            ],
        )
    number_rows = [
        {"contact_id": contact_id, "number": number, "kind": kind}
        for contact_id, r in [*plan.updates, *plan.inserts]
        for number, kind in r.numbers
    ]
    if number_rows:
        await conn.execute(insert(n), number_rows)


__all__ = [
    "ColumnMapping",
    "ContactRow",
    "ImportPlan",
    "ImportReport",
    "ParsedCsv",
    "PhoneColumn",
    "StoredContact",
    "decode",
    "import_contacts",
    "import_parsed",
    "parse_csv",
    "phone_kind_for",
    "plan_import",
    "sniff_delimiter",
]
