"""Hold imports: an office's own list of holds, previewed and then applied into that office only."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from core import locks
from core.permissions import STAFF
from core.services.delegations import delegation_create
from core.models import Hold, HoldImport, Notification
from core.services import hold_imports
from core.services.hold_imports import (hold_import_apply, hold_import_cancel, hold_import_preview,
                                        hold_import_preview_again)
from core.services.holds import hold_place, hold_release
from tests import factories
from tests.conftest import LockHolder

pytestmark = pytest.mark.django_db

H = Hold.Status
HI = HoldImport.Status
ANN, BOB, CY = "SCE/CS/0001/2022", "SCE/CS/0002/2022", "SCE/CS/0003/2022"


def csv(*lines, title=True) -> ContentFile:
    head = ["Library system — overdue items", "Reg No,Name,Book Title,Fine (KES)"] if title else \
        ["Reg No,Name,Book Title,Fine (KES)"]
    return ContentFile("\n".join([*head, *lines]).encode(), name="overdue.csv")


@pytest.fixture
def students(db):
    return {reg: factories.student_with_reg(reg, with_user=True) for reg in (ANN, BOB, CY)}


@pytest.fixture
def hos_reviewer(make_reviewer):
    return make_reviewer("HOS", email="hos@clearance.test")


def preview(lines, offices, user, code="LIB", **kwargs):
    return hold_import_preview(file=csv(*lines), department=offices[code], acting_user=user, **kwargs)


def imported(student=None, status=H.ACTIVE):
    qs = Hold.objects.filter(source=Hold.Source.HOLD_IMPORT, status=status)
    return qs.filter(student=student) if student is not None else qs


def test_preview_changes_nothing_and_apply_places_one_hold_per_distinct_reason(
        offices, students, lib_reviewer, django_capture_on_commit_callbacks):
    hi = preview([f"{ANN},Ann,Intro to Algorithms,\"1,500.00\"", f"{ANN},Ann,Calculus,",
                  f"{BOB.lower()},Bob,Physics,KES 800"], offices, lib_reviewer)
    assert (hi.status, hi.placed_count, hi.updated_count, hi.released_count, hi.error_count) == (HI.PREVIEWED, 3, 0, 0, 0)
    assert not Hold.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    hi.refresh_from_db()
    assert (hi.status, hi.placed_count) == (HI.APPLIED, 3)
    assert sorted(imported().values_list("student__registration_number", "reason", "amount")) == [
        (ANN, "Calculus", None), (ANN, "Intro to Algorithms", Decimal("1500.00")), (BOB, "Physics", Decimal("800.00"))]
    hold = imported(students[BOB]).get()
    assert (hold.department.code, hold.hold_import, hold.placed_by) == ("LIB", hi, lib_reviewer)
    record = hold.history.get()
    assert record.history_change_reason == f"Placed by hold import #{hi.pk} (overdue.csv)"
    assert record.history_user == lib_reviewer
    assert Notification.objects.filter(user=students[ANN].user, title="LIB placed a hold").count() == 2


def test_the_same_reason_again_updates_the_amount_and_wording(offices, students, lib_reviewer):
    first = preview([f"{ANN},Ann,Intro to Algorithms,1500"], offices, lib_reviewer)
    hold_import_apply(hold_import=first, acting_user=lib_reviewer)
    hold = imported().get()
    second = preview([f"{ANN},Ann,INTRO TO  algorithms,2000"], offices, lib_reviewer)
    assert (second.placed_count, second.updated_count, second.unchanged_count) == (0, 1, 0)
    hold_import_apply(hold_import=second, acting_user=lib_reviewer)
    hold.refresh_from_db()
    assert (hold.amount, hold.reason, hold.hold_import, hold.status) == (Decimal("2000"), "INTRO TO algorithms",
                                                                        second, H.ACTIVE)
    assert imported().count() == 1
    assert hold.history.latest().history_change_reason == f"Updated by hold import #{second.pk} (overdue.csv)"
    third = preview([f"{ANN},Ann,INTRO TO algorithms,2000"], offices, lib_reviewer)
    assert (third.placed_count, third.updated_count, third.unchanged_count) == (0, 0, 1)


def test_a_full_list_releases_the_import_holds_no_longer_in_it(offices, students, lib_reviewer):
    hold_import_apply(hold_import=preview([f"{ANN},Ann,Calculus,", f"{ANN},Ann,Physics,", f"{BOB},Bob,Chemistry,200"],
                                          offices, lib_reviewer), acting_user=lib_reviewer)
    hi = preview([f"{ANN},Ann,Calculus,"], offices, lib_reviewer, full_list=True)
    assert (hi.full_list, hi.released_count, hi.unchanged_count) == (True, 2, 1)
    assert sorted((r[2], r[3]) for r in hi.plan["release"]) == [(ANN, "Physics"), (BOB, "Chemistry")]
    hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    assert list(imported().values_list("reason", flat=True)) == ["Calculus"]
    released = imported(students[BOB], status=H.RELEASED).get()
    assert (released.released_by, released.hold_import) == (lib_reviewer, hi)
    assert released.release_reason == f"Not in the full list of hold import #{hi.pk} (overdue.csv)"
    assert released.history.latest().history_change_reason == \
        f"Released by hold import #{hi.pk} (overdue.csv): not in the full list"


def test_a_list_that_is_not_the_full_list_releases_nothing(offices, students, lib_reviewer):
    hold_import_apply(hold_import=preview([f"{ANN},Ann,Calculus,", f"{BOB},Bob,Chemistry,"], offices, lib_reviewer),
                      acting_user=lib_reviewer)
    hi = preview([f"{CY},Cy,Biology,"], offices, lib_reviewer)
    assert hi.released_count == 0
    hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    assert imported().count() == 3


def test_holds_placed_by_hand_are_never_updated_nor_released(offices, students, lib_reviewer):
    by_hand = hold_place(department=offices["LIB"], student=students[ANN], reason="Calculus", amount="100",
                         acting_user=lib_reviewer)
    other = hold_place(department=offices["LIB"], student=students[BOB], reason="Lost card", acting_user=lib_reviewer)
    hi = preview([f"{ANN},Ann,calculus,900"], offices, lib_reviewer, full_list=True)
    # the row's reason is the hand-placed hold's: already held, nothing placed over it
    assert (hi.placed_count, hi.updated_count, hi.unchanged_count, hi.released_count) == (0, 0, 1, 0)
    assert hi.plan["unchanged"][0][-1] is True
    hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    by_hand.refresh_from_db()
    other.refresh_from_db()
    assert (by_hand.status, by_hand.amount, by_hand.source) == (H.ACTIVE, Decimal("100"), Hold.Source.MANUAL)
    assert other.status == H.ACTIVE
    assert not imported().exists()


def test_other_offices_holds_are_not_touched(offices, students, lib_reviewer, hos_reviewer):
    hold_import_apply(hold_import=hold_import_preview(file=csv(f"{ANN},Ann,Broken chair,500"),
                                                      department=offices["HOS"], acting_user=hos_reviewer),
                      acting_user=hos_reviewer)
    hold_import_apply(hold_import=preview([f"{BOB},Bob,Calculus,"], offices, lib_reviewer, full_list=True),
                      acting_user=lib_reviewer)
    assert imported(students[ANN]).get().department.code == "HOS"


def test_repeated_rows(offices, students, lib_reviewer):
    hi = preview([f"{ANN},Ann,Calculus,100", f"{ANN},Ann,calculus,100"], offices, lib_reviewer)
    assert (hi.placed_count, hi.error_count) == (1, 0)
    assert any("repeat another row exactly" in w for w in hi.warnings)
    clash = preview([f"{ANN},Ann,Calculus,100", f"{ANN},Ann,Calculus,250"], offices, lib_reviewer)
    assert (clash.placed_count, clash.error_count) == (0, 2)
    assert {(e["row"], e["column"]) for e in clash.errors} == {(3, "Book Title"), (4, "Book Title")}
    assert "with different amounts" in clash.errors[0]["reason"]


def test_errors_block_the_apply_unless_skipped_and_a_full_list_keeps_those_students_holds(
        offices, students, lib_reviewer):
    hold_import_apply(hold_import=preview([f"{ANN},Ann,Calculus,", f"{BOB},Bob,Physics,"], offices, lib_reviewer),
                      acting_user=lib_reviewer)
    hi = preview([f"{ANN},Ann,Calculus,twelve", f"{CY},Cy,Biology,", "NOT/A/0000/1999,Nobody,Chemistry,"],
                 offices, lib_reviewer, full_list=True)
    assert hi.errors == [{"row": 3, "column": "Fine (KES)", "reason": "“twelve” is not an amount", "value": "twelve"}]
    assert hi.plan["not_found"] == [[5, "NOT/A/0000/1999"]]
    assert hi.not_found_count == 1
    # Bob is not in the list: released; Ann's row could not be read: she keeps her hold
    assert [r[2] for r in hi.plan["release"]] == [BOB]
    with pytest.raises(ValidationError, match="1 row with errors"):
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    assert HoldImport.objects.get(pk=hi.pk).status == HI.PREVIEWED
    hold_import_apply(hold_import=hi, acting_user=lib_reviewer, skip_errors=True)
    assert sorted(imported().values_list("student__registration_number", "reason")) == [
        (ANN, "Calculus"), (CY, "Biology")]


def test_a_stale_preview_is_refused_and_nothing_changes(offices, students, lib_reviewer, make_reviewer):
    colleague = make_reviewer("LIB", email="colleague@clearance.test")
    hi = preview([f"{ANN},Ann,Calculus,"], offices, lib_reviewer)
    hold_place(department=offices["LIB"], student=students[BOB], reason="Lost card", acting_user=colleague)
    with pytest.raises(ValidationError, match=r"LIB's holds changed since this preview \(last by colleague@"):
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    hi.refresh_from_db()
    assert hi.status == HI.FAILED and "Preview the file again" in hi.failure_reason
    assert not imported().exists()
    again = hold_import_preview_again(hold_import=hi, acting_user=lib_reviewer)
    assert (again.pk != hi.pk, again.placed_count, again.original_name) == (True, 1, "overdue.csv")
    hold_import_apply(hold_import=again, acting_user=lib_reviewer)
    assert imported().count() == 1


def test_a_hold_released_by_hand_since_the_preview_makes_it_stale(offices, students, lib_reviewer):
    hold_import_apply(hold_import=preview([f"{ANN},Ann,Calculus,"], offices, lib_reviewer), acting_user=lib_reviewer)
    hi = preview([f"{ANN},Ann,Calculus,50"], offices, lib_reviewer)
    hold_release(hold=imported().get(), acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="changed since this preview"):
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    assert Hold.objects.get().amount is None


def test_another_offices_holds_changing_does_not_make_it_stale(offices, students, lib_reviewer, hos_reviewer):
    hi = preview([f"{ANN},Ann,Calculus,"], offices, lib_reviewer)
    hold_place(department=offices["HOS"], student=students[BOB], reason="Key", acting_user=hos_reviewer)
    hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    assert imported().count() == 1


def test_a_failure_half_way_loses_nothing(offices, students, lib_reviewer, monkeypatch):
    hold_import_apply(hold_import=preview([f"{ANN},Ann,Calculus,", f"{BOB},Bob,Physics,"], offices, lib_reviewer),
                      acting_user=lib_reviewer)
    hi = preview([f"{ANN},Ann,Calculus,300", f"{CY},Cy,Biology,"], offices, lib_reviewer, full_list=True)
    assert (hi.placed_count, hi.updated_count, hi.released_count) == (1, 1, 1)

    def boom(*args, **kwargs):          # after the new hold is placed and the amount updated
        raise RuntimeError("disk full")
    monkeypatch.setattr(hold_imports, "_notify", boom)
    with pytest.raises(RuntimeError):
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    assert sorted(imported().values_list("reason", "amount")) == [("Calculus", None), ("Physics", None)]
    assert not Hold.objects.filter(reason="Biology").exists()
    hi.refresh_from_db()
    assert hi.status == HI.FAILED and "RuntimeError: disk full" in hi.failure_reason


def test_applies_of_one_office_are_serialised(offices, students, lib_reviewer, own_lock_dir):
    hi = preview([f"{ANN},Ann,Calculus,"], offices, lib_reviewer)
    with LockHolder(("hold-import-apply", offices["LIB"].pk)):
        with pytest.raises(ValidationError, match="Another LIB hold import is being applied"):
            hold_import_apply(hold_import=hi, acting_user=lib_reviewer, wait=0)
    assert HoldImport.objects.get(pk=hi.pk).status == HI.PREVIEWED
    with LockHolder(("hold-import-apply", offices["HOS"].pk)):      # another office's apply does not wait
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer, wait=0)
    assert locks.is_held("hold-import-apply", offices["LIB"].pk) is False


def test_applied_or_cancelled_imports_are_not_applied_again(offices, students, lib_reviewer):
    hi = preview([f"{ANN},Ann,Calculus,"], offices, lib_reviewer)
    hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="already applied"):
        hold_import_apply(hold_import=hi, acting_user=lib_reviewer)
    other = preview([f"{BOB},Bob,Physics,"], offices, lib_reviewer)
    hold_import_cancel(hold_import=other, acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="cancelled, not previewed"):
        hold_import_apply(hold_import=other, acting_user=lib_reviewer)
    assert imported().count() == 1


# --- each office into its own only ----------------------------------------------------------------

@pytest.mark.parametrize("mine, theirs", [("LIB", "HOS"), ("HOS", "LIB")])
def test_a_reviewer_imports_into_their_own_office_only(offices, students, make_reviewer, mine, theirs):
    reviewer = make_reviewer(mine)
    with pytest.raises(ValidationError, match=f"You do not review {theirs}"):
        preview([f"{ANN},Ann,Calculus,"], offices, reviewer, code=theirs)
    assert not HoldImport.objects.exists()
    own = preview([f"{ANN},Ann,Calculus,"], offices, reviewer, code=mine)
    owner = make_reviewer(theirs)
    # the other office's clerk cannot confirm, cancel or re-preview it
    for call in (hold_import_apply, hold_import_cancel, hold_import_preview_again):
        with pytest.raises(ValidationError, match=f"You do not review {mine}"):
            call(hold_import=own, acting_user=owner)
    assert not Hold.objects.exists()
    hold_import_apply(hold_import=own, acting_user=reviewer)
    assert imported().get().department.code == mine


def test_a_school_limited_reviewer_cannot_import_the_whole_office(offices, students, make_reviewer):
    limited = make_reviewer("SCH", schools=[students[ANN].school])
    with pytest.raises(ValidationError, match="You do not review SCH for every student"):
        preview([f"{ANN},Ann,Project report,"], offices, limited, code="SCH")


def test_a_delegation_lends_the_import(offices, students, lib_reviewer, make_user):
    stand_in = make_user(STAFF)
    today = timezone.localdate()
    delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=stand_in, starts_on=today,
                      ends_on=today, reason="Leave", acting_user=lib_reviewer)
    hold_import_apply(hold_import=preview([f"{ANN},Ann,Calculus,"], offices, stand_in), acting_user=stand_in)
    assert imported().count() == 1


def test_an_unreadable_file_leaves_no_trace(offices, lib_reviewer):
    with pytest.raises(ValidationError, match="No header row found.*a reason column"):
        hold_import_preview(file=ContentFile(b"Reg No,Balance\nSCE/CS/0001/2022,100\n", name="balances.csv"),
                            department=offices["LIB"], acting_user=lib_reviewer)
    assert not HoldImport.objects.exists()
