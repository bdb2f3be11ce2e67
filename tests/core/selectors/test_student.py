"""core.selectors.student: what a student reads of their own clearance."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import ClearanceApproval
from core.selectors.student import student_progress
from core.services.approvals import approvals_approve, approvals_reject
from tests.conftest import approval_of


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_the_selector_counts_days_only_for_waiting_items(student, clearance, superuser):
    ClearanceApproval.objects.filter(request=clearance).update(waiting_since=timezone.now() - timedelta(days=20))
    approvals_approve(approval_ids=[approval_of(clearance, "LIB").pk], acting_user=superuser).raise_if_refused()

    items = {i.department.code: i for i in student_progress(student)[0].items}

    assert items["LIB"].days_waiting is None and not items["LIB"].is_overdue
    assert items["REG"].days_waiting is None and not items["REG"].is_overdue   # its stage is not open
    assert items["SPT"].days_waiting == 20 and items["SPT"].is_overdue


def test_cards_put_what_needs_the_student_first(student, clearance, superuser, lib_reviewer):
    approvals_approve(approval_ids=[approval_of(clearance, "SPT").pk], acting_user=superuser).raise_if_refused()
    approvals_reject(approval_ids=[approval_of(clearance, "LIB").pk], acting_user=lib_reviewer,
                     reason="Book").raise_if_refused()
    view = student_progress(student)[0]
    codes = [i.department.code for i in view.cards]
    assert codes[0] == "LIB" and codes[-1] == "SPT"
    lib = next(i for i in view.items if i.department.code == "LIB")
    assert lib.can_resubmit and "then re-submit with your response" in lib.next_step


def test_the_finance_item_says_to_pay_not_to_resubmit(student, clearance, offices, finance_user, settings):
    from decimal import Decimal

    from core.services.holds import hold_place
    settings.FINANCE_AUTO_CLEAR = True
    hold_place(department=offices["FIN"], student=student, reason="Fee balance", amount=Decimal("12500"),
               acting_user=finance_user)
    fin = next(i for i in student_progress(student)[0].items if i.department.code == "FIN")
    assert fin.status == ClearanceApproval.Status.REJECTED
    assert not fin.can_resubmit and fin.next_step.startswith("Pay the balance")


def test_next_step_once_the_resubmissions_are_used_up(clearance, student, approval, lib_reviewer):
    from core.services.approvals import approval_reject
    clearance.cycle.max_resubmissions = 0
    clearance.cycle.save()
    approval_reject(approval=approval(clearance, "LIB"), acting_user=lib_reviewer, reason="Book overdue")
    [view] = student_progress(student)
    lib = next(i for i in view.items if i.department.code == "LIB")
    assert "used every re-submission" in lib.next_step
