"""What a student reads of their own clearance (core/selectors/student.py): each office's item
with what to do next."""
from __future__ import annotations

import pytest

from core.selectors.student import student_progress
from core.services.approvals import approval_approve, approval_reject

pytestmark = pytest.mark.django_db


def _items(student):
    [view] = student_progress(student)
    return {i.department.code: i for i in view.items}


@pytest.mark.parametrize("office_stages", [{"REG": 2}])
def test_next_step_says_what_the_student_does_about_each_item(clearance, student, approval, lib_reviewer,
                                                              make_reviewer):
    approval_reject(approval=approval(clearance, "LIB"), acting_user=lib_reviewer, reason="Book overdue")
    approval_approve(approval=approval(clearance, "SPT"), acting_user=make_reviewer("SPT"))
    items = _items(student)
    assert items["LIB"].next_step == "Answer the reason given and re-submit to Library."
    assert items["SPT"].next_step == "Nothing: Sports has cleared you."
    assert items["REG"].next_step.startswith("Nothing yet: this opens once ") and "LIB" in items["REG"].next_step
    assert items["GOWN"].next_step == "Nothing: waiting for Gown store."


def test_next_step_once_the_resubmissions_are_used_up(clearance, student, approval, lib_reviewer):
    clearance.cycle.max_resubmissions = 0
    clearance.cycle.save()
    approval_reject(approval=approval(clearance, "LIB"), acting_user=lib_reviewer, reason="Book overdue")
    assert "used every re-submission" in _items(student)["LIB"].next_step
