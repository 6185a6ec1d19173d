"""plan_import: which row inserts, updates, conflicts or moves a number, without a database."""

from __future__ import annotations

import uuid

from pbx_service.calls.queueing import Tier
from pbx_service.contacts.importer import ContactRow, StoredContact, plan_import

N1, N2, N3 = "+74951111111", "+74952222222", "+74953333333"


def row(n: int, *numbers: str, external_id: str | None = None) -> ContactRow:
    return ContactRow(
        row=n,
        name=f"Row {n}",
        numbers=tuple((x, "work") for x in numbers),
        tier=Tier.B,
        external_id=external_id,
    )


def stored(name: str, external_id: str | None = None) -> StoredContact:
    return StoredContact(uuid.uuid4(), name, external_id)


def fixed_ids() -> list[uuid.UUID]:
    return [uuid.UUID(int=i) for i in range(1, 10)]


def test_new_rows_are_inserted() -> None:
    new = iter(fixed_ids())
    plan = plan_import([row(2, N1), row(3, N2)], {}, {}, new_id=lambda: next(new))
    assert [(i.int, r.row) for i, r in plan.inserts] == [(1, 2), (2, 3)]
    assert plan.updates == [] and plan.skipped == [] and plan.moved == []


def test_a_row_updates_the_contact_with_its_crm_id() -> None:
    old = stored("Old", "42")
    plan = plan_import([row(2, N1, external_id="42")], {}, {"42": old})
    assert [(i, r.row) for i, r in plan.updates] == [(old.id, 2)]
    assert plan.inserts == []


def test_a_row_without_id_updates_the_one_contact_owning_its_numbers() -> None:
    old = stored("Old")
    plan = plan_import([row(2, N1, N2)], {N1: old}, {})
    assert [(i, r.row) for i, r in plan.updates] == [(old.id, 2)]


def test_an_id_less_contact_is_adopted_by_a_row_with_a_new_crm_id() -> None:
    old = stored("Old")
    plan = plan_import([row(2, N1, external_id="7")], {N1: old}, {})
    assert [(i, r.row) for i, r in plan.updates] == [(old.id, 2)]


def test_a_number_of_a_contact_with_another_crm_id_is_a_conflict() -> None:
    other = stored("Other", "99")
    plan = plan_import([row(2, N1, external_id="7"), row(3, N2)], {N1: other}, {})
    assert len(plan.skipped) == 1
    r, reason = plan.skipped[0]
    assert r == 2
    assert reason.startswith(f"number {N1} belongs to another contact 'Other' ({other.id}")
    assert "CRM id '99'" in reason and "replace" in reason
    assert [r.row for _, r in plan.inserts] == [3]


def test_replace_moves_the_number_instead() -> None:
    other = stored("Other", "99")
    plan = plan_import([row(2, N1, external_id="7")], {N1: other}, {}, replace=True)
    assert plan.skipped == []
    assert [r.row for _, r in plan.inserts] == [2]
    assert plan.moved == [(N1, other, 2)]


def test_numbers_spread_over_two_contacts_conflict() -> None:
    a, b = stored("A"), stored("B")
    plan = plan_import([row(2, N1, N2)], {N1: a, N2: b}, {})
    assert [r for r, _ in plan.skipped] == [2]
    assert plan.inserts == [] and plan.updates == []


def test_a_number_released_by_an_update_in_the_same_file_is_no_conflict() -> None:
    # The CRM moved N2 from contact 42 to a new contact: 42's row no longer lists it.
    old = stored("Old", "42")
    rows = [row(2, N2, external_id="43"), row(3, N1, external_id="42")]
    plan = plan_import(rows, {N1: old, N2: old}, {"42": old})
    assert plan.skipped == [] and plan.moved == []
    assert [r.row for _, r in plan.inserts] == [2]
    assert [(i, r.row) for i, r in plan.updates] == [(old.id, 3)]


def test_a_skipped_update_releases_nothing_so_its_dependants_conflict_too() -> None:
    # Row 3 would update "Old" and release N2 for row 2, but row 3 conflicts on N3.
    old, other = stored("Old", "42"), stored("Other", "99")
    rows = [row(2, N2, external_id="43"), row(3, N1, N3, external_id="42")]
    plan = plan_import(rows, {N1: old, N2: old, N3: other}, {"42": old})
    assert [r for r, _ in plan.skipped] == [2, 3]
    assert plan.inserts == [] and plan.updates == []


def test_two_id_less_rows_cannot_both_claim_one_contact() -> None:
    old = stored("Old")
    plan = plan_import([row(2, N1), row(3, N2)], {N1: old, N2: old}, {})
    assert [(i, r.row) for i, r in plan.updates] == [(old.id, 2)]
    # Row 3's number is released by row 2's update of Old (which no longer lists N2).
    assert [r.row for _, r in plan.inserts] == [3]
    assert plan.skipped == []


def test_crm_id_match_wins_over_number_ownership() -> None:
    # Row 2 (no id) owns N1 of contact 42, but row 3 carries 42's id: row 3 updates it.
    old = stored("Old", "42")
    plan = plan_import([row(2, N1), row(3, N2, external_id="42")], {N1: old}, {"42": old})
    assert [(i, r.row) for i, r in plan.updates] == [(old.id, 3)]
    assert [r.row for _, r in plan.inserts] == [2]
    assert plan.skipped == []
