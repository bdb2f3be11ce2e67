"""Finance clearance follows the money (workflow rule 5)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.models import ClearanceApproval, ClearanceRequest, Department, Hold
from core.services.approvals import approval_approve
from core.services.finance import finance_clearance_follow
from core.services.holds import hold_place, hold_release
from tests import factories

pytestmark = pytest.mark.django_db

A = ClearanceApproval.Status
R = ClearanceRequest.Status


@pytest.fixture
def fin(clearance, approval):
    return approval(clearance, "FIN")


def _fresh(approval):
    return ClearanceApproval.objects.get(pk=approval.pk)


def test_placing_a_fin_hold_rejects_the_finance_item_naming_the_amount(fin, offices, student, finance_user):
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=Decimal("12500"),
               acting_user=finance_user)
    stored = _fresh(fin)
    assert stored.status == A.REJECTED
    assert "KES 12,500.00" in stored.reason
    assert stored.decided_by == finance_user
    assert ClearanceRequest.objects.get(pk=fin.request_id).status == R.ON_HOLD


def test_two_fin_holds_are_added_up(fin, offices, student, finance_user):
    hold_place(department=offices["FIN"], student=student, reason="Tuition", amount=10000, acting_user=finance_user)
    hold_place(department=offices["FIN"], student=student, reason="Graduation fee", amount=5500,
               acting_user=finance_user)
    assert "KES 15,500.00" in _fresh(fin).reason


def test_releasing_the_last_fin_hold_approves_the_finance_item(fin, offices, student, finance_user):
    tuition = hold_place(department=offices["FIN"], student=student, reason="Tuition", amount=10000,
                         acting_user=finance_user)
    fee = hold_place(department=offices["FIN"], student=student, reason="Graduation fee", amount=5500,
                     acting_user=finance_user)
    hold_release(hold=tuition, acting_user=finance_user, reason="Paid")
    stored = _fresh(fin)
    assert stored.status == A.REJECTED
    assert "KES 5,500.00" in stored.reason
    hold_release(hold=fee, acting_user=finance_user, reason="Paid")
    stored = _fresh(fin)
    assert (stored.status, stored.reason, stored.decided_by) == (A.APPROVED, "", finance_user)


def test_the_finance_item_opens_approved_when_no_finance_hold_is_active(fin):
    stored = _fresh(fin)
    assert (stored.status, stored.decided_by, stored.reason) == (A.APPROVED, None, "")
    assert stored.decided_at is not None
    assert stored.history.count() == 1       # created decided: one row, the opening


def test_the_finance_item_opens_rejected_naming_an_active_finance_hold(offices, open_request, student):
    factories.HoldFactory(department=offices["FIN"], student=student, amount=Decimal("3200"),
                          source=Hold.Source.BALANCE_IMPORT)
    stored = open_request(student).approvals.get(department__code="FIN")
    assert (stored.status, stored.reason) == (A.REJECTED, "Outstanding fee balance of KES 3,200.00")
    assert ClearanceRequest.objects.get(pk=stored.request_id).status == R.ON_HOLD


def test_a_hold_of_another_office_does_not_touch_the_finance_item(fin, offices, student, lib_reviewer):
    before = _fresh(fin).history.count()
    hold_place(department=offices["LIB"], student=student, reason="Book", acting_user=lib_reviewer)
    assert _fresh(fin).status == A.APPROVED
    assert _fresh(fin).history.count() == before


def test_nothing_changes_when_finance_auto_clear_is_off(offices, open_request, approval, student, finance_user,
                                                       settings):
    settings.FINANCE_AUTO_CLEAR = False
    fin = approval(open_request(student), "FIN")
    assert _fresh(fin).status == A.PENDING          # a person decides it
    hold = hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=12500,
                      acting_user=finance_user)
    assert _fresh(fin).status == A.PENDING
    hold_release(hold=hold, acting_user=finance_user)
    assert _fresh(fin).status == A.PENDING
    assert _fresh(fin).history.count() == 1


def test_follow_records_the_import_as_the_decider(fin, offices, student, finance_user):
    balance_import = factories.BalanceImportFactory(uploaded_by=finance_user)
    factories.HoldFactory(department=offices["FIN"], student=student, amount=Decimal("800"),
                          source=Hold.Source.BALANCE_IMPORT, balance_import=balance_import)
    approved, rejected = finance_clearance_follow(student_ids=[student.pk], acting_user=finance_user,
                                                  reason="Balance import", balance_import=balance_import)
    assert (approved.done, rejected.done) == ([], [fin.pk])
    stored = _fresh(fin)
    assert (stored.status, stored.decided_by_import, stored.decided_by) == (A.REJECTED, balance_import, finance_user)
    assert stored.reason == "Outstanding fee balance of KES 800.00"
    assert stored.history.first().history_change_reason == "Balance import"

    Hold.objects.update(status=Hold.Status.RELEASED)
    approved, rejected = finance_clearance_follow(student_ids=[student.pk], acting_user=finance_user,
                                                  reason="Balance import", balance_import=balance_import)
    assert (approved.done, rejected.done) == ([fin.pk], [])
    assert (_fresh(fin).status, _fresh(fin).decided_by_import) == (A.APPROVED, balance_import)


def test_follow_is_quiet_when_nothing_changes(fin, offices, student, finance_user):
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=100,
               acting_user=finance_user)
    history_before = _fresh(fin).history.count()
    approved, rejected = finance_clearance_follow(student_ids=[student.pk], acting_user=finance_user, reason="x")
    assert (approved.done, rejected.done, approved.refused, rejected.refused) == ([], [], [], [])
    assert _fresh(fin).history.count() == history_before


def test_follow_leaves_a_completed_request_alone(clearance, fin, offices, student, finance_user, complete_request):
    complete_request(clearance)
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=12500,
               acting_user=finance_user)
    assert _fresh(fin).status == A.APPROVED
    assert ClearanceRequest.objects.get(pk=clearance.pk).status == R.COMPLETED


def test_follow_does_nothing_without_an_active_fin_office(fin, offices, student, finance_user):
    Department.objects.filter(code="FIN").update(is_active=False)
    factories.HoldFactory(department=offices["FIN"], student=student, amount=Decimal("100"))
    approved, rejected = finance_clearance_follow(student_ids=[student.pk], acting_user=finance_user, reason="x")
    assert (approved.done, rejected.done) == ([], [])
    assert _fresh(fin).status == A.APPROVED          # as it opened


@pytest.mark.parametrize("office_stages", [{"FIN": 2}])
def test_auto_approve_respects_stage_order(fin, offices, student, finance_user, superuser):
    hold = hold_place(department=offices["FIN"], student=student, reason="Fee", amount=100, acting_user=finance_user)
    assert _fresh(fin).status == A.REJECTED
    hold_release(hold=hold, acting_user=finance_user)
    assert _fresh(fin).status == A.REJECTED  # stage 1 still open: the rules refuse, the row stays
    stage_one = list(ClearanceApproval.objects.filter(request_id=fin.request_id, department__stage=1))
    for a in stage_one[:-1]:
        approval_approve(approval=a, acting_user=superuser)
    assert _fresh(fin).status == A.REJECTED
    approval_approve(approval=stage_one[-1], acting_user=superuser)
    # the stage has cleared: the finance item follows the holds by itself (there are none)
    stored = _fresh(fin)
    assert (stored.status, stored.decided_by) == (A.APPROVED, None)
    assert stored.history.first().history_change_reason == "system: Finance follows the holds: an earlier stage cleared"


@pytest.mark.parametrize("office_stages", [{"FIN": 2}])
def test_a_finance_item_after_the_first_stage_opens_pending(fin):
    assert _fresh(fin).status == A.PENDING


def test_a_manual_approve_is_refused_while_a_fin_hold_is_active(fin, offices, student, finance_user):
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=12500,
               acting_user=finance_user)
    with pytest.raises(ValidationError) as exc:
        approval_approve(approval=fin, acting_user=finance_user)
    assert exc.value.messages[0] == "it was rejected; re-open it first"
    assert _fresh(fin).status == A.REJECTED


def test_a_new_fin_hold_rejects_an_already_approved_finance_item(fin, offices, student, finance_user,
                                                                 django_capture_on_commit_callbacks):
    assert _fresh(fin).status == A.APPROVED
    with django_capture_on_commit_callbacks(execute=True):
        hold_place(department=offices["FIN"], student=student, reason="Late penalty", amount="250",
                   acting_user=finance_user)
    stored = _fresh(fin)
    assert (stored.status, stored.reason) == (A.REJECTED, "Outstanding fee balance of KES 250.00")
    assert stored.history.filter(status=A.APPROVED).exists()
    from core.models import Notification
    assert Notification.objects.filter(user=student.user, kind=Notification.Kind.REJECTED,
                                       title="FIN: rejected").exists()


def test_a_fin_hold_without_amount_rejects_with_its_reason_not_kes_zero(fin, offices, student, finance_user):
    hold_place(department=offices["FIN"], student=student, reason="Cheque bounced: see the cashier",
               acting_user=finance_user)
    stored = _fresh(fin)
    assert stored.status == A.REJECTED
    assert stored.reason == "Finance hold: Cheque bounced: see the cashier"
    assert "KES 0.00" not in stored.reason


def test_finance_follow_needs_a_user_or_the_system_said_so(offices, student):
    with pytest.raises(ValueError, match="system=True"):
        finance_clearance_follow(student_ids=[student.pk], acting_user=None, reason="x")
    finance_clearance_follow(student_ids=[student.pk], acting_user=None, reason="x", system=True)
