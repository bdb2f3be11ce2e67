"""Deciding clearance approvals (workflow rules 2–4)."""
from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import permissions
from core.models import ClearanceApproval, ClearanceRequest, Hold, Notification
from core.selectors.clearance import completed_but_now_held
from core.services.approvals import (CLOSED_REQUEST_REASONS, approval_approve, approval_reject, approval_reopen,
                                     approval_resubmit, approval_waive, approvals_approve, approvals_reject,
                                     approvals_reopen, approvals_waive)
from core.services.holds import hold_place, hold_release
from core.services.requests import requests_open_for_cohort
from tests import factories

pytestmark = pytest.mark.django_db

A = ClearanceApproval.Status
R = ClearanceRequest.Status


def status_of(approval) -> str:
    return ClearanceApproval.objects.values_list("status", flat=True).get(pk=approval.pk)


def request_status(request) -> str:
    return ClearanceRequest.objects.values_list("status", flat=True).get(pk=request.pk)


# --- approve --------------------------------------------------------------------------------------

def test_reviewer_approves_their_offices_item(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    result = approval_approve(approval=lib, acting_user=lib_reviewer, notes="All books back")
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert result.status == stored.status == A.APPROVED
    assert stored.decided_by == lib_reviewer
    assert stored.decided_at is not None
    assert stored.notes == "All books back"
    assert request_status(clearance) == R.IN_PROGRESS


def test_approving_another_offices_item_is_refused(clearance, approval, lib_reviewer):
    spt = approval(clearance, "SPT")
    with pytest.raises(ValidationError) as refused:
        approval_approve(approval=spt, acting_user=lib_reviewer)
    # the refusal says nothing of the item: not the office, not the student
    assert refused.value.messages == ["This item is not in your queue."]
    assert status_of(spt) == A.PENDING


def test_a_decision_needs_an_acting_user(clearance, approval):
    with pytest.raises(ValidationError, match="needs the person"):
        approval_approve(approval=approval(clearance, "LIB"), acting_user=None)


def test_approving_twice_is_refused(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    approval_approve(approval=lib, acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="already approved"):
        approval_approve(approval=lib, acting_user=lib_reviewer)


def test_unknown_approval_id_is_refused_in_bulk(clearance, approval, lib_reviewer):
    # an id of nothing and an id of another office's item get one answer: counted, not named
    result = approvals_approve(approval_ids=[999999, approval(clearance, "SPT").pk], acting_user=lib_reviewer)
    assert result.done == [] and result.refused == []
    assert sorted(result.unseen) == sorted([999999, approval(clearance, "SPT").pk])
    assert result.unseen_text("clearance item") == "2 clearance items are not in your queue"


def test_the_system_is_told_of_an_unknown_id_by_number(clearance):
    result = approvals_approve(approval_ids=[999999], acting_user=None, system=True)
    assert [(r.pk, r.reason) for r in result.refused] == [(999999, "no such clearance item")]


def test_superuser_decides_any_office(clearance, approval, superuser):
    approval_approve(approval=approval(clearance, "SPT"), acting_user=superuser)
    assert status_of(approval(clearance, "SPT")) == A.APPROVED


def test_school_office_reviewer_cannot_decide_a_student_of_another_school(offices, open_request, make_reviewer):
    spa = factories.SchoolFactory(code="SPA")
    sce_student = factories.StudentFactory()
    spa_student = factories.StudentFactory(school=spa)
    reviewer = make_reviewer("SCH", schools=[sce_student.school])
    ok = open_request(sce_student).approvals.get(department__code="SCH")
    neighbour = open_request(spa_student).approvals.get(department__code="SCH")
    approval_approve(approval=ok, acting_user=reviewer)
    with pytest.raises(ValidationError, match="not in your queue"):
        approval_approve(approval=neighbour, acting_user=reviewer)
    assert (status_of(ok), status_of(neighbour)) == (A.APPROVED, A.PENDING)


# --- stage order ----------------------------------------------------------------------------------

@pytest.mark.parametrize("office_stages", [{"GOWN": 2, "REG": 3}])
def test_approve_is_refused_while_an_earlier_stage_is_open(clearance, approval, make_reviewer, superuser):
    reg_reviewer = make_reviewer("REG")
    reg = approval(clearance, "REG")
    with pytest.raises(ValidationError) as exc:
        approval_approve(approval=reg, acting_user=reg_reviewer)
    message = exc.value.messages[0]
    assert message.startswith("an earlier stage is still open: ")
    for code in ("LIB", "SCH", "SPT", "GOWN"):     # FIN is approved at opening: no finance hold
        assert f"{code} (pending)" in message
    assert "REG" not in message.split(":", 1)[1]
    assert status_of(reg) == A.PENDING


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_the_message_names_only_the_offices_still_open(clearance, approval, make_reviewer, superuser):
    for code in ("LIB", "SCH"):
        approval_approve(approval=approval(clearance, code), acting_user=superuser)
    approval_reject(approval=approval(clearance, "SPT"), acting_user=superuser, reason="Kit not returned")
    with pytest.raises(ValidationError) as exc:
        approval_approve(approval=approval(clearance, "REG"), acting_user=make_reviewer("REG"))
    assert exc.value.messages[0] == "an earlier stage is still open: GOWN (pending), SPT (rejected)"


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_approve_is_allowed_once_every_earlier_stage_is_cleared(clearance, approval, make_reviewer, superuser):
    stage_one = list(clearance.approvals.filter(department__stage=1, status=A.PENDING).values_list("pk", flat=True))
    approvals_approve(approval_ids=stage_one[1:], acting_user=superuser).raise_if_refused()
    approvals_waive(approval_ids=stage_one[:1], acting_user=superuser, reason="Not applicable").raise_if_refused()
    approval_approve(approval=approval(clearance, "REG"), acting_user=make_reviewer("REG"))
    assert status_of(approval(clearance, "REG")) == A.APPROVED
    assert request_status(clearance) == R.COMPLETED


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_reject_is_not_held_back_by_stage_order(clearance, approval, make_reviewer):
    approval_reject(approval=approval(clearance, "REG"), acting_user=make_reviewer("REG"), reason="Photo missing")
    assert status_of(approval(clearance, "REG")) == A.REJECTED


# --- holds block approve --------------------------------------------------------------------------

def test_an_active_hold_of_the_office_blocks_approve_naming_the_hold(clearance, approval, offices, student,
                                                                     lib_reviewer):
    factories.HoldFactory(department=offices["LIB"], student=student, reason="Book 'Dune' not returned",
                          amount=Decimal("1500"))
    lib = approval(clearance, "LIB")
    with pytest.raises(ValidationError) as exc:
        approval_approve(approval=lib, acting_user=lib_reviewer)
    assert exc.value.messages[0] == ("LIB holds an active hold on the student: "
                                     "Book 'Dune' not returned (KES 1,500.00)")
    assert status_of(lib) == A.PENDING


def test_another_offices_hold_does_not_block(clearance, approval, offices, student, lib_reviewer):
    factories.HoldFactory(department=offices["SPT"], student=student, reason="Jersey not returned")
    approval_approve(approval=approval(clearance, "LIB"), acting_user=lib_reviewer)
    assert status_of(approval(clearance, "LIB")) == A.APPROVED


def test_a_released_hold_no_longer_blocks(clearance, approval, offices, student, lib_reviewer):
    hold = hold_place(department=offices["LIB"], student=student, reason="Book not returned",
                      acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="active hold"):
        approval_approve(approval=approval(clearance, "LIB"), acting_user=lib_reviewer)
    hold_release(hold=hold, acting_user=lib_reviewer, reason="Returned")
    approval_approve(approval=approval(clearance, "LIB"), acting_user=lib_reviewer)
    assert status_of(approval(clearance, "LIB")) == A.APPROVED


def test_another_students_hold_does_not_block(clearance, approval, offices, lib_reviewer):
    factories.HoldFactory(department=offices["LIB"], student=factories.StudentFactory())
    approval_approve(approval=approval(clearance, "LIB"), acting_user=lib_reviewer)
    assert status_of(approval(clearance, "LIB")) == A.APPROVED


# --- reject and waive -----------------------------------------------------------------------------

def test_reject_sets_the_reason_and_puts_the_request_on_hold(clearance, approval, lib_reviewer, student,
                                                             django_capture_on_commit_callbacks):
    lib = approval(clearance, "LIB")
    with django_capture_on_commit_callbacks(execute=True):
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="  Two books overdue ")
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.reason, stored.decided_by) == (A.REJECTED, "Two books overdue", lib_reviewer)
    assert request_status(clearance) == R.ON_HOLD
    note = Notification.objects.get(user=student.user, kind=Notification.Kind.REJECTED)
    assert "Two books overdue" in note.message


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reject_without_reason_is_refused_and_changes_nothing(clearance, approval, lib_reviewer, reason):
    lib = approval(clearance, "LIB")
    history_before = lib.history.count()
    with pytest.raises(ValidationError, match="A reason is required to reject"):
        approval_reject(approval=lib, acting_user=lib_reviewer, reason=reason)
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.reason, stored.decided_by, stored.decided_at) == (A.PENDING, "", None, None)
    assert lib.history.count() == history_before
    assert request_status(clearance) == R.IN_PROGRESS     # FIN approved at opening


def test_bulk_reject_with_one_reason_per_item(offices, open_request, lib_reviewer):
    a, b = factories.StudentFactory(), factories.StudentFactory()
    la = open_request(a).approvals.get(department__code="LIB")
    lb = open_request(b).approvals.get(department__code="LIB")
    result = approvals_reject(approval_ids=[la.pk, lb.pk], acting_user=lib_reviewer,
                              reason={la.pk: "Book A", lb.pk: "Book B"})
    assert sorted(result.done) == sorted([la.pk, lb.pk])
    assert dict(ClearanceApproval.objects.filter(pk__in=[la.pk, lb.pk]).values_list("pk", "reason")) == {
        la.pk: "Book A", lb.pk: "Book B"}


def test_bulk_reject_refuses_an_empty_reason_in_the_per_item_map(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    with pytest.raises(ValidationError, match="reason is required"):
        approvals_reject(approval_ids=[lib.pk], acting_user=lib_reviewer, reason={lib.pk: " "})
    assert status_of(lib) == A.PENDING


def test_rejecting_again_for_the_same_reason_is_refused(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    with pytest.raises(ValidationError, match="already rejected for this reason"):
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book lost")
    assert ClearanceApproval.objects.get(pk=lib.pk).reason == "Book lost"


def test_rejecting_another_offices_item_is_refused(clearance, approval, lib_reviewer):
    with pytest.raises(ValidationError, match="not in your queue"):
        approval_reject(approval=approval(clearance, "SPT"), acting_user=lib_reviewer, reason="No")
    assert status_of(approval(clearance, "SPT")) == A.PENDING


def test_waive_needs_a_reason(clearance, approval, lib_reviewer):
    with pytest.raises(ValidationError, match="A reason is required to waive"):
        approval_waive(approval=approval(clearance, "LIB"), acting_user=lib_reviewer, reason=" ")
    assert status_of(approval(clearance, "LIB")) == A.PENDING


@pytest.mark.parametrize("office_stages", [{"LIB": 2}])
def test_waive_clears_despite_a_hold_and_an_open_earlier_stage(clearance, approval, offices, student,
                                                               lib_reviewer):
    factories.HoldFactory(department=offices["LIB"], student=student)
    approval_waive(approval=approval(clearance, "LIB"), acting_user=lib_reviewer, reason="Book written off")
    stored = approval(clearance, "LIB")
    assert (stored.status, stored.reason, stored.decided_by) == (A.WAIVED, "Book written off", lib_reviewer)


def test_a_waived_item_cannot_be_rejected_or_waived_again(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    approval_waive(approval=lib, acting_user=lib_reviewer, reason="Written off")
    with pytest.raises(ValidationError, match="it was waived; re-open it first"):
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="Changed my mind")
    with pytest.raises(ValidationError, match="already waived"):
        approval_waive(approval=lib, acting_user=lib_reviewer, reason="Again")


# --- re-open and re-submit ------------------------------------------------------------------------

def test_office_reopens_a_rejected_item_and_the_decision_stays_in_history(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    approval_reopen(approval=lib, acting_user=lib_reviewer, note="Student brought the book")
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.reason, stored.decided_by, stored.decided_at) == (A.PENDING, "", None, None)
    assert stored.notes == "Student brought the book"
    records = list(stored.history.order_by("-history_id"))
    assert records[0].status == A.PENDING
    assert records[0].history_change_reason == "Re-opened by the office: Student brought the book"
    assert records[1].status == A.REJECTED
    assert records[1].reason == "Book overdue"
    assert records[1].history_user == lib_reviewer
    assert records[-1].status == A.PENDING  # as opened
    assert request_status(clearance) == R.IN_PROGRESS     # FIN approved at opening


def test_reopen_refuses_an_item_that_is_not_rejected(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    with pytest.raises(ValidationError, match="only a rejected item can be re-opened; this one is pending"):
        approval_reopen(approval=lib, acting_user=lib_reviewer)
    approval_approve(approval=lib, acting_user=lib_reviewer)
    result = approvals_reopen(approval_ids=[lib.pk], acting_user=lib_reviewer)
    assert result.refused[0].reason.endswith("this one is approved")
    assert status_of(lib) == A.APPROVED


def test_reopen_refuses_another_offices_item(clearance, approval, lib_reviewer, superuser):
    spt = approval(clearance, "SPT")
    approval_reject(approval=spt, acting_user=superuser, reason="Kit not returned")
    with pytest.raises(ValidationError, match="not in your queue"):
        approval_reopen(approval=spt, acting_user=lib_reviewer)
    assert status_of(spt) == A.REJECTED


def test_student_resubmits_a_rejected_item_with_a_response(clearance, approval, lib_reviewer, student):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    approval_resubmit(approval=lib, acting_user=student.user, response="  Returned it on Monday ")
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.reason, stored.student_response) == (A.PENDING, "", "Returned it on Monday")
    clearance.refresh_from_db()
    assert clearance.resubmission_count == 1
    assert clearance.status == R.IN_PROGRESS     # FIN approved at opening
    last = stored.history.first()
    assert last.history_user == student.user
    assert "Returned it on Monday" in last.history_change_reason
    assert stored.history.filter(status=A.REJECTED, reason="Book overdue").exists()


def test_a_resubmission_carries_a_file_stored_under_a_random_name(clearance, approval, lib_reviewer, student):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.conftest import PDF_BYTES
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    approval_resubmit(approval=lib, acting_user=student.user, response="Slip attached",
                      file=SimpleUploadedFile("Return slip.PDF", PDF_BYTES))
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert stored.response_file_name == "Return slip.PDF"
    assert stored.response_file.name.startswith("responses/") and "slip" not in stored.response_file.name.lower()
    assert stored.response_file.read() == PDF_BYTES
    assert stored.history.first().response_file_name == "Return slip.PDF"


def test_a_resubmission_with_a_file_that_is_no_document_changes_nothing(clearance, approval, lib_reviewer,
                                                                       student):
    from django.core.files.uploadedfile import SimpleUploadedFile
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    with pytest.raises(ValidationError, match="is an SVG image"):
        approval_resubmit(approval=lib, acting_user=student.user, response="Slip attached",
                          file=SimpleUploadedFile("slip.pdf", b'<svg xmlns="http://www.w3.org/2000/svg"/>'))
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.student_response, stored.response_file.name) == (A.REJECTED, "", "")
    assert ClearanceRequest.objects.get(pk=clearance.pk).resubmission_count == 0


def test_resubmitted_and_reopened_items_keep_their_first_waiting_time(clearance, approval, lib_reviewer, student):
    lib = approval(clearance, "LIB")
    first = timezone.now() - datetime.timedelta(days=9)
    ClearanceApproval.objects.filter(pk=lib.pk).update(waiting_since=first)
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    approval_resubmit(approval=lib, acting_user=student.user, response="Returned it")
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.waiting_since, stored.days_waiting) == (A.PENDING, first, 9)
    approval_reject(approval=stored, acting_user=lib_reviewer, reason="Still overdue")
    approval_reopen(approval=stored, acting_user=lib_reviewer)
    assert ClearanceApproval.objects.get(pk=lib.pk).waiting_since == first


@pytest.mark.parametrize("closed", [R.COMPLETED, R.REVOKED])
def test_resubmit_is_refused_on_a_completed_or_revoked_request(clearance, approval, lib_reviewer, student, closed):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    now = timezone.now()
    ClearanceRequest.objects.filter(pk=clearance.pk).update(status=closed, completed_at=now, revoked_at=now,
                                                             revoked_reason="Withdrawn")
    with pytest.raises(ValidationError) as exc:
        approval_resubmit(approval=lib, acting_user=student.user, response="Returned it")
    assert exc.value.messages == [f"Not possible: {CLOSED_REQUEST_REASONS[closed]}."]
    assert (status_of(lib), ClearanceRequest.objects.get(pk=clearance.pk).resubmission_count) == (A.REJECTED, 0)


def test_resubmissions_are_limited_per_cycle(clearance, approval, lib_reviewer, student):
    clearance.cycle.max_resubmissions = 1
    clearance.cycle.save()
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    approval_resubmit(approval=lib, acting_user=student.user, response="Returned")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book damaged")
    with pytest.raises(ValidationError) as exc:
        approval_resubmit(approval=lib, acting_user=student.user, response="Paid for the damage")
    assert "used all 1 re-submissions" in exc.value.messages[0]
    assert "Library" in exc.value.messages[0]
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.reason) == (A.REJECTED, "Book damaged")
    assert ClearanceRequest.objects.get(pk=clearance.pk).resubmission_count == 1


def test_resubmission_limit_defaults_to_the_setting(clearance, approval, lib_reviewer, student, settings):
    settings.MAX_RESUBMISSIONS = 0
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    with pytest.raises(ValidationError, match="used all 0 re-submissions"):
        approval_resubmit(approval=lib, acting_user=student.user, response="Returned")
    assert status_of(lib) == A.REJECTED


def test_resubmitting_someone_elses_item_is_refused(clearance, approval, lib_reviewer):
    neighbour = factories.StudentFactory(with_user=True)
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    for intruder in (neighbour.user, lib_reviewer):
        with pytest.raises(ValidationError, match="only re-submit your own"):
            approval_resubmit(approval=lib, acting_user=intruder, response="Let me in")
    assert status_of(lib) == A.REJECTED
    assert ClearanceRequest.objects.get(pk=clearance.pk).resubmission_count == 0


def test_resubmit_needs_a_response(clearance, approval, lib_reviewer, student):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    with pytest.raises(ValidationError, match="Write a response"):
        approval_resubmit(approval=lib, acting_user=student.user, response="  ")
    assert status_of(lib) == A.REJECTED


def test_resubmit_refuses_an_item_that_is_not_rejected(clearance, approval, student):
    with pytest.raises(ValidationError, match="Only a rejected item can be re-submitted; LIB is pending"):
        approval_resubmit(approval=approval(clearance, "LIB"), acting_user=student.user, response="Hi")


def test_resubmit_is_refused_once_the_cycle_is_closed(clearance, approval, lib_reviewer, student):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    clearance.cycle.is_closed = True
    clearance.cycle.save()
    with pytest.raises(ValidationError, match="is closed; re-submissions are not accepted"):
        approval_resubmit(approval=lib, acting_user=student.user, response="Returned")
    assert status_of(lib) == A.REJECTED


# --- completion -----------------------------------------------------------------------------------

def test_all_cleared_completes_the_request_and_notifies_the_student(clearance, superuser, student,
                                                                    django_capture_on_commit_callbacks):
    ids = list(clearance.approvals.filter(status=A.PENDING).values_list("pk", flat=True))
    approvals_waive(approval_ids=ids[:1], acting_user=superuser, reason="Not applicable").raise_if_refused()
    assert request_status(clearance) == R.IN_PROGRESS
    with django_capture_on_commit_callbacks(execute=True):
        approvals_approve(approval_ids=ids[1:], acting_user=superuser).raise_if_refused()
    clearance.refresh_from_db()
    assert clearance.status == R.COMPLETED
    assert clearance.completed_at is not None
    completed = Notification.objects.filter(user=student.user, kind=Notification.Kind.COMPLETED)
    assert completed.count() == 1
    assert completed.get().title == "Your clearance is complete"


def test_not_completed_while_one_item_is_open(clearance, superuser, student, django_capture_on_commit_callbacks):
    ids = list(clearance.approvals.filter(status=A.PENDING).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        approvals_approve(approval_ids=ids[1:], acting_user=superuser).raise_if_refused()
    assert request_status(clearance) == R.IN_PROGRESS
    assert not Notification.objects.filter(kind=Notification.Kind.COMPLETED).exists()


def test_a_rolled_back_decision_notifies_nobody(clearance, superuser, django_capture_on_commit_callbacks):
    ids = list(clearance.approvals.filter(status=A.PENDING).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            approvals_approve(approval_ids=ids, acting_user=superuser)
            raise RuntimeError("something later failed")
    assert callbacks == []
    assert not Notification.objects.exists()
    assert request_status(clearance) == R.IN_PROGRESS     # as it was: FIN approved at opening


@pytest.fixture
def completed(clearance, complete_request):
    return complete_request(clearance)


def test_a_completed_request_refuses_later_decisions_with_a_clear_message(completed, approval, lib_reviewer):
    lib = approval(completed, "LIB")
    with pytest.raises(ValidationError) as exc:
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="Found an overdue book")
    assert exc.value.messages[0] == ("the student's clearance is already completed; the registry must revoke it "
                                     "before any decision changes")
    with pytest.raises(ValidationError, match="already completed"):
        approval_waive(approval=lib, acting_user=lib_reviewer, reason="x")
    assert status_of(lib) == A.APPROVED
    assert request_status(completed) == R.COMPLETED


def test_a_completed_request_refuses_reopen(completed, approval, lib_reviewer):
    # make an item rejected behind the workflow's back, as an old row might be
    ClearanceApproval.objects.filter(pk=approval(completed, "LIB").pk).update(status=A.REJECTED, reason="Old")
    with pytest.raises(ValidationError, match="already completed"):
        approval_reopen(approval=approval(completed, "LIB"), acting_user=lib_reviewer)
    assert status_of(approval(completed, "LIB")) == A.REJECTED


def test_a_new_hold_on_a_completed_request_is_reported_not_applied(completed, offices, student, lib_reviewer):
    assert completed not in completed_but_now_held()
    hold_place(department=offices["LIB"], student=student, reason="Book found overdue", acting_user=lib_reviewer)
    assert request_status(completed) == R.COMPLETED
    assert status_of(completed.approvals.get(department__code="LIB")) == A.APPROVED
    assert list(completed_but_now_held()) == [completed]


def test_completed_but_now_held_ignores_released_holds_and_open_requests(completed, offices, student,
                                                                         lib_reviewer, open_request):
    hold = hold_place(department=offices["LIB"], student=student, reason="Book", acting_user=lib_reviewer)
    other = factories.StudentFactory()
    open_request(other)
    factories.HoldFactory(department=offices["LIB"], student=other)
    hold_release(hold=hold, acting_user=lib_reviewer)
    assert not completed_but_now_held().exists()


def test_a_revoked_request_refuses_decisions(clearance, approval, registry_user, lib_reviewer):
    from core.services.requests import request_revoke
    request_revoke(request=clearance, acting_user=registry_user, reason="Withdrew")
    with pytest.raises(ValidationError, match="was revoked"):
        approval_approve(approval=approval(clearance, "LIB"), acting_user=lib_reviewer)


# --- bulk -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_bulk_approve_of_mixed_rows_reports_done_and_refused_with_reasons(offices, open_request, make_reviewer,
                                                                          superuser):
    reviewer = make_reviewer("LIB", "REG")
    mine, held, done_before = (factories.StudentFactory() for _ in range(3))
    req_mine, req_held, req_done = open_request(mine), open_request(held), open_request(done_before)
    factories.HoldFactory(department=offices["LIB"], student=held, reason="Laptop not returned")
    lib_done = req_done.approvals.get(department__code="LIB")
    approval_approve(approval=lib_done, acting_user=superuser)

    ok = req_mine.approvals.get(department__code="LIB")
    not_mine = req_mine.approvals.get(department__code="SPT")
    earlier = req_mine.approvals.get(department__code="REG")
    blocked = req_held.approvals.get(department__code="LIB")
    ids = [ok.pk, not_mine.pk, earlier.pk, blocked.pk, lib_done.pk, 987654]

    result = approvals_approve(approval_ids=ids, acting_user=reviewer)

    assert result.done == [ok.pk]
    refused = {r.pk: r for r in result.refused}
    assert set(refused) == {earlier.pk, blocked.pk, lib_done.pk}
    # another office's item and an id of nothing: counted alike, never named
    assert sorted(result.unseen) == sorted([not_mine.pk, 987654])
    assert refused[earlier.pk].reason.startswith("an earlier stage is still open: ")
    assert "LIB (pending)" in refused[earlier.pk].reason
    assert refused[blocked.pk].reason == "LIB holds an active hold on the student: Laptop not returned"
    assert refused[lib_done.pk].reason == "already approved"
    statuses = dict(ClearanceApproval.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ok.pk: A.APPROVED, not_mine.pk: A.PENDING, earlier.pk: A.PENDING,
                        blocked.pk: A.PENDING, lib_done.pk: A.APPROVED}


def test_bulk_approve_writes_one_history_row_per_item(offices, open_request, lib_reviewer):
    ids = [open_request(factories.StudentFactory()).approvals.get(department__code="LIB").pk for _ in range(3)]
    approvals_approve(approval_ids=ids + ids, acting_user=lib_reviewer).raise_if_refused()
    approved = ClearanceApproval.history.filter(id__in=ids, status=A.APPROVED)
    assert approved.count() == 3
    assert {h.history_user for h in approved} == {lib_reviewer}


def _bulk_approve_queries(n, cycle, registry_user, reviewer, year, on_commit):
    factories.StudentFactory.create_batch(n, expected_graduation_year=year, with_user=True)
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=year)
    cohort = ClearanceApproval.objects.filter(request__student__expected_graduation_year=year)
    # every other office has cleared, so this approve completes each request (status, history, notices)
    cohort.exclude(department__code="LIB").update(status=A.APPROVED, decided_at=timezone.now())
    ids = list(cohort.filter(department__code="LIB").values_list("pk", flat=True))
    assert len(ids) == n
    with CaptureQueriesContext(connection) as ctx, on_commit(execute=True):
        result = approvals_approve(approval_ids=ids, acting_user=reviewer)
    assert result.done_count == n
    assert Notification.objects.filter(user__student__expected_graduation_year=year,
                                       kind=Notification.Kind.COMPLETED).count() == n
    assert ClearanceRequest.objects.filter(student__expected_graduation_year=year,
                                           status=R.COMPLETED).count() == n
    return len(ctx)


def test_bulk_approve_queries_do_not_grow_with_rows(offices, cycle, registry_user, lib_reviewer,
                                                    sqlite_param_limit, django_capture_on_commit_callbacks):
    on_commit = django_capture_on_commit_callbacks
    for_10 = _bulk_approve_queries(10, cycle, registry_user, lib_reviewer, 2030, on_commit)
    for_100 = _bulk_approve_queries(100, cycle, registry_user, lib_reviewer, 2031, on_commit)
    assert for_100 == for_10


# --- what the pages never offer, and decisions on a stale view -----------------------------------

def test_approving_a_rejected_item_is_refused_until_it_is_reopened(clearance, approval, lib_reviewer):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book overdue")
    with pytest.raises(ValidationError, match="it was rejected; re-open it first"):
        approval_approve(approval=lib, acting_user=lib_reviewer)
    assert status_of(lib) == A.REJECTED
    approval_reopen(approval=lib, acting_user=lib_reviewer)
    approval_approve(approval=lib, acting_user=lib_reviewer)
    assert status_of(lib) == A.APPROVED


def test_a_decision_on_an_item_changed_since_the_clerk_saw_it_is_refused_naming_who(clearance, approval,
                                                                                     make_reviewer):
    lib1, lib2 = make_reviewer("LIB", email="lib1@clearance.test"), make_reviewer("LIB", email="lib2@clearance.test")
    seen = approval(clearance, "LIB").state_token          # both clerks open the page
    approval_approve(approval=approval(clearance, "LIB"), acting_user=lib2, seen=seen)
    with pytest.raises(ValidationError) as exc:
        approval_reject(approval=approval(clearance, "LIB"), acting_user=lib1, reason="Book", seen=seen)
    when = timezone.localtime(ClearanceApproval.objects.get(pk=approval(clearance, "LIB").pk).updated_at)
    assert exc.value.messages[0] == (f"changed since you opened it: approved by lib2@clearance.test at "
                                     f"{when:%H:%M} — reload")
    stored = approval(clearance, "LIB")
    assert (stored.status, stored.decided_by) == (A.APPROVED, lib2)
    # with the page reloaded, the same clerk may reject it
    approval_reject(approval=stored, acting_user=lib1, reason="Book", seen=stored.state_token)
    assert status_of(stored) == A.REJECTED


def test_a_bulk_decision_refuses_only_the_rows_changed_since_the_page_was_made(offices, open_request, lib_reviewer,
                                                                               superuser):
    a, b, c = (open_request(factories.StudentFactory()).approvals.get(department__code="LIB") for _ in range(3))
    seen = {x.pk: x.state_token for x in (a, b)}
    seen_at = timezone.now()
    approval_reject(approval=b, acting_user=superuser, reason="Book")           # b changes after the page
    result = approvals_approve(approval_ids=[a.pk, b.pk, c.pk], acting_user=lib_reviewer, seen=seen, seen_at=seen_at)
    assert result.done == [a.pk, c.pk]          # c was not on the page: checked against seen_at, unchanged
    assert [(r.pk, r.reason.split(":")[0]) for r in result.refused] == [(b.pk, "changed since you opened it")]
    assert "rejected by admin@clearance.test" in result.refused[0].reason
    late = approvals_reject(approval_ids=[c.pk], acting_user=lib_reviewer, reason="x", seen_at=seen_at)
    assert late.done == [] and late.refused[0].reason.startswith("changed since you opened it: approved by")


def test_a_person_does_not_reject_or_reopen_the_finance_item_while_finance_follows_the_holds(clearance, approval,
                                                                                             finance_user, student,
                                                                                             offices):
    fin = approval(clearance, "FIN")
    with pytest.raises(ValidationError, match="place a finance hold"):
        approval_reject(approval=fin, acting_user=finance_user, reason="Owes")
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=100, acting_user=finance_user)
    assert status_of(fin) == A.REJECTED
    with pytest.raises(ValidationError, match="release or waive the hold"):
        approval_reopen(approval=fin, acting_user=finance_user)
    with pytest.raises(ValidationError, match="Finance clears you by itself"):
        approval_resubmit(approval=fin, acting_user=student.user, response="I paid")
    approval_waive(approval=fin, acting_user=finance_user, reason="Bursary covers it")   # an override stays possible
    assert status_of(fin) == A.WAIVED


def test_with_auto_clear_off_the_finance_item_is_decided_by_a_person(offices, open_request, approval, student,
                                                                     finance_user, settings):
    settings.FINANCE_AUTO_CLEAR = False
    fin = approval(open_request(student), "FIN")
    approval_reject(approval=fin, acting_user=finance_user, reason="Owes")
    approval_reopen(approval=fin, acting_user=finance_user)
    assert status_of(fin) == A.PENDING


def test_evidence_is_checked_by_content_in_the_service_too(clearance, approval, lib_reviewer):
    from django.core.files.uploadedfile import SimpleUploadedFile
    lib = approval(clearance, "LIB")
    page = SimpleUploadedFile("letter.pdf", b"<html><script>alert(1)</script></html>")
    with pytest.raises(ValidationError, match="letter.pdf is a web page or XML"):
        approval_approve(approval=lib, acting_user=lib_reviewer, evidence=page)
    lib.refresh_from_db()
    assert (lib.status, lib.evidence.name) == (ClearanceApproval.Status.PENDING, "")


def test_evidence_of_a_bulk_decision_is_stored_once_under_a_random_name(clearance, approval, make_reviewer):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from core.services.approvals import approvals_approve
    reviewer = make_reviewer("LIB", "SPT")
    items = [approval(clearance, "LIB"), approval(clearance, "SPT")]
    approvals_approve(approval_ids=[a.pk for a in items], acting_user=reviewer,
                      evidence=SimpleUploadedFile("Books returned.pdf", b"%PDF-1.4\n%%EOF\n")).raise_if_refused()
    names = {(a.evidence.name, a.evidence_name) for a in ClearanceApproval.objects.filter(pk__in=[a.pk for a in items])}
    assert len(names) == 1
    (stored, shown), = names
    assert shown == "Books returned.pdf" and stored.startswith("evidence/") and "Books" not in stored


# --- which items wait: the stored stage_open follows every decision (core.services.status) ------

@pytest.mark.parametrize("office_stages", [{"GOWN": 2, "REG": 3}])
def test_the_stored_stage_open_follows_the_decisions_of_earlier_stages(clearance, approval, make_reviewer, superuser):
    from core.selectors.consistency import consistency_violations

    def open_codes():
        return {a.department.code for a in clearance.approvals.select_related("department") if a.stage_open}

    stage_one = {"FIN", "LIB", "HOS", "SCH", "SPT"} & {a.department.code for a in clearance.approvals.all()}
    assert open_codes() == stage_one                        # as opened: only stage 1 waits
    pending = clearance.approvals.filter(department__stage=1, status=A.PENDING).values_list("pk", flat=True)
    approvals_approve(approval_ids=list(pending), acting_user=superuser).raise_if_refused()
    assert open_codes() == stage_one | {"GOWN"}             # stage 1 cleared: the gown store's turn
    approval_reject(approval=approval(clearance, "LIB"), acting_user=superuser, reason="Book")
    assert open_codes() == stage_one                        # a stage-1 item open again closes the rest
    approval_reopen(approval=approval(clearance, "LIB"), acting_user=superuser)
    approvals_waive(approval_ids=[approval(clearance, "LIB").pk], acting_user=superuser, reason="Lost in flood")
    approval_approve(approval=approval(clearance, "GOWN"), acting_user=superuser)
    assert open_codes() == stage_one | {"GOWN", "REG"}
    assert consistency_violations() == []
