"""Holds: placing, releasing and waiving what an office holds against a student."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.models import Hold, Notification
from core.services.holds import hold_place, hold_release, hold_waive, holds_place, holds_release
from tests import factories

pytestmark = pytest.mark.django_db

H = Hold.Status


def test_reviewer_places_a_hold_and_the_student_is_told(offices, student, lib_reviewer,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        hold = hold_place(department=offices["LIB"], student=student, reason=" Book not returned ",
                          amount="1500", acting_user=lib_reviewer)
    stored = Hold.objects.get(pk=hold.pk)
    assert (stored.status, stored.reason, stored.amount, stored.placed_by, stored.source) == (
        H.ACTIVE, "Book not returned", Decimal("1500.00"), lib_reviewer, Hold.Source.MANUAL)
    note = Notification.objects.get(user=student.user, kind=Notification.Kind.HOLD)
    assert note.title == "LIB placed a hold"
    assert note.message == "Book not returned (KES 1,500.00)"
    assert stored.history.get().history_user == lib_reviewer


def test_a_hold_needs_a_reason(offices, student, lib_reviewer):
    with pytest.raises(ValidationError, match="A reason is required to place a hold"):
        hold_place(department=offices["LIB"], student=student, reason="  ", acting_user=lib_reviewer)
    assert not Hold.objects.exists()


@pytest.mark.parametrize("amount, message", [(Decimal("-1"), "cannot be negative"),
                                             (Decimal("10000001"), "more than any fee")])
def test_a_hold_amount_must_be_sensible(offices, student, lib_reviewer, amount, message):
    with pytest.raises(ValidationError, match=message):
        hold_place(department=offices["LIB"], student=student, reason="Fine", amount=amount,
                   acting_user=lib_reviewer)
    assert not Hold.objects.exists()


def test_placing_another_offices_hold_is_refused(offices, student, lib_reviewer):
    with pytest.raises(ValidationError, match="You do not review SPT"):
        hold_place(department=offices["SPT"], student=student, reason="Jersey", acting_user=lib_reviewer)
    assert not Hold.objects.exists()


def test_a_school_limited_reviewer_holds_only_their_schools_students(offices, make_reviewer):
    spa = factories.SchoolFactory(code="SPA")
    mine, neighbour = factories.StudentFactory(), factories.StudentFactory(school=spa)
    reviewer = make_reviewer("SCH", schools=[mine.school])
    result = holds_place(department=offices["SCH"], student_ids=[mine.pk, neighbour.pk], reason="Project report",
                         acting_user=reviewer)
    assert result.done == [mine.pk]
    # the neighbour is counted, not named: the clerk learns nothing of another school's students
    assert result.refused == [] and result.unseen == [neighbour.pk]
    assert result.unseen_text("student") == "1 student is not among the students you review"
    assert list(Hold.objects.values_list("student_id", flat=True)) == [mine.pk]


def test_bulk_place_refuses_duplicates_and_unknown_students(offices, lib_reviewer):
    a, b = factories.StudentFactory(), factories.StudentFactory()
    hold_place(department=offices["LIB"], student=a, reason="Book", acting_user=lib_reviewer)
    result = holds_place(department=offices["LIB"], student_ids=[a.pk, b.pk, 424242], reason="Book",
                         acting_user=lib_reviewer)
    assert result.done == [b.pk]
    refused = {r.pk: r.reason for r in result.refused}
    assert refused == {a.pk: "LIB already holds this student for “Book”"}
    assert result.unseen == [424242]
    assert Hold.objects.filter(student=a).count() == 1
    # a different reason is a different hold
    hold_place(department=offices["LIB"], student=a, reason="Fine", acting_user=lib_reviewer)
    assert Hold.objects.filter(student=a, status=H.ACTIVE).count() == 2


def test_release_a_hold(offices, student, lib_reviewer, django_capture_on_commit_callbacks):
    hold = hold_place(department=offices["LIB"], student=student, reason="Book", acting_user=lib_reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        hold_release(hold=hold, acting_user=lib_reviewer, reason="Returned")
    stored = Hold.objects.get(pk=hold.pk)
    assert (stored.status, stored.released_by, stored.release_reason) == (H.RELEASED, lib_reviewer, "Returned")
    assert stored.released_at is not None
    assert Notification.objects.filter(user=student.user, title="LIB released a hold").exists()


def test_release_twice_is_refused(offices, student, lib_reviewer):
    hold = hold_place(department=offices["LIB"], student=student, reason="Book", acting_user=lib_reviewer)
    hold_release(hold=hold, acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="already released"):
        hold_release(hold=hold, acting_user=lib_reviewer)


def test_releasing_another_offices_hold_is_refused(offices, student, lib_reviewer):
    hold = factories.HoldFactory(department=offices["SPT"], student=student)
    with pytest.raises(ValidationError) as refused:
        hold_release(hold=hold, acting_user=lib_reviewer)
    assert refused.value.messages == ["This hold is not among your offices' holds."]
    assert Hold.objects.get(pk=hold.pk).status == H.ACTIVE


def test_bulk_release_reports_each_row(offices, student, lib_reviewer):
    mine = factories.HoldFactory(department=offices["LIB"], student=student)
    theirs = factories.HoldFactory(department=offices["SPT"], student=student)
    result = holds_release(hold_ids=[mine.pk, theirs.pk, 31337], acting_user=lib_reviewer)
    assert result.done == [mine.pk]
    assert result.refused == [] and set(result.unseen) == {theirs.pk, 31337}


def test_waive_a_hold_needs_a_reason(offices, student, lib_reviewer):
    hold = factories.HoldFactory(department=offices["LIB"], student=student)
    with pytest.raises(ValidationError, match="A reason is required to waive a hold"):
        hold_waive(hold=hold, acting_user=lib_reviewer, reason="")
    assert Hold.objects.get(pk=hold.pk).status == H.ACTIVE
    hold_waive(hold=hold, acting_user=lib_reviewer, reason="Book written off")
    stored = Hold.objects.get(pk=hold.pk)
    assert (stored.status, stored.release_reason) == (H.WAIVED, "Book written off")


def test_system_may_place_holds_without_a_user(offices, student):
    hold = hold_place(department=offices["LIB"], student=student, reason="Rule: overdue", acting_user=None,
                      source=Hold.Source.RULE, system=True)
    assert (hold.placed_by, hold.source) == (None, Hold.Source.RULE)
    record = hold.history.get()
    assert (record.history_user, record.history_change_reason) == (None, "system: Hold placed: Rule: overdue")


@pytest.mark.parametrize("call", ["place", "release", "waive"])
def test_a_missing_user_is_not_the_system(offices, student, call):
    from core.services.holds import holds_release, holds_waive
    hold = factories.HoldFactory(department=offices["SPT"], student=student)
    with pytest.raises(ValidationError, match="needs the person who does it"):
        if call == "place":
            holds_place(department=offices["SPT"], student_ids=[student.pk], reason="Kit", acting_user=None)
        elif call == "release":
            holds_release(hold_ids=[hold.pk], acting_user=None)
        else:
            holds_waive(hold_ids=[hold.pk], acting_user=None, reason="Written off")
    assert Hold.objects.get(pk=hold.pk).status == H.ACTIVE and Hold.objects.count() == 1


def test_a_hold_that_follows_the_imported_balance_is_not_released_or_waived_by_hand(offices, student, finance_user):
    from core.services.holds import holds_release, holds_waive
    imported = factories.HoldFactory(department=offices["FIN"], student=student, amount=Decimal("900"),
                                     source=Hold.Source.BALANCE_IMPORT)
    for service, kwargs in ((holds_release, {}), (holds_waive, {"reason": "Bursary"})):
        result = service(hold_ids=[imported.pk], acting_user=finance_user, **kwargs)
        assert result.done == []
        assert "follows the fee balance from the finance system (KES 900.00)" in result.refused[0].reason
    assert Hold.objects.get(pk=imported.pk).status == Hold.Status.ACTIVE


def test_nobody_places_a_hold_in_the_balance_import_s_name(offices, student, finance_user):
    with pytest.raises(ValidationError, match="placed by balance imports only"):
        hold_place(department=offices["FIN"], student=student, reason="Balance", amount=100, acting_user=finance_user,
                   source=Hold.Source.BALANCE_IMPORT)
    assert not Hold.objects.exists()
