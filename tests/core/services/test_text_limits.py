"""What people write has limits: services refuse longer text whoever calls them (a form, a
command, the API), with the length and the limit, and change nothing."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.models import ClearanceApproval, Hold
from core.services._common import text_within
from core.services.approvals import (approval_reject, approval_resubmit, approvals_approve, approvals_reject,
                                     approvals_reopen, approvals_waive)
from core.services.holds import hold_place, holds_release
from core.services.requests import request_revoke

pytestmark = pytest.mark.django_db
A = ClearanceApproval.Status
HUGE = "x" * 200_000


def test_text_within_strips_and_refuses_beyond_the_limit():
    assert text_within("  ok  ", limit=2) == "ok"
    assert text_within(None, limit=2) == ""
    with pytest.raises(ValidationError, match="The note is 3 characters long; at most 2 are allowed"):
        text_within("abc", limit=2, what="note")


@pytest.mark.parametrize("service, kwargs, match", [
    (approvals_approve, {"notes": HUGE}, "note is 200,000 characters long; at most 4,000"),
    (approvals_reject, {"reason": HUGE}, "reason is 200,000 characters long; at most 2,000"),
    (approvals_reject, {"reason": "Book out", "notes": HUGE}, "note is 200,000"),
    (approvals_waive, {"reason": HUGE}, "reason is 200,000"),
    (approvals_reopen, {"note": HUGE}, "note is 200,000"),
])
def test_decisions_refuse_overlong_text(clearance, approval, lib_reviewer, service, kwargs, match):
    lib = approval(clearance, "LIB")
    if service is approvals_reopen:
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book out")
    before = ClearanceApproval.objects.get(pk=lib.pk)
    with pytest.raises(ValidationError, match=match):
        service(approval_ids=[lib.pk], acting_user=lib_reviewer, **kwargs)
    after = ClearanceApproval.objects.get(pk=lib.pk)
    assert (after.status, after.reason, after.notes) == (before.status, before.reason, before.notes)


def test_a_200000_character_response_is_refused(clearance, approval, lib_reviewer, student):
    lib = approval(clearance, "LIB")
    approval_reject(approval=lib, acting_user=lib_reviewer, reason="Book out")
    with pytest.raises(ValidationError, match="response is 200,000 characters long; at most 2,000"):
        approval_resubmit(approval=lib, acting_user=student.user, response=HUGE)
    assert ClearanceApproval.objects.get(pk=lib.pk).status == A.REJECTED
    approval_resubmit(approval=lib, acting_user=student.user, response="r" * 2000)   # the limit itself is fine


def test_holds_and_revocations_refuse_overlong_reasons(clearance, student, offices, lib_reviewer, registry_user):
    with pytest.raises(ValidationError, match="at most 255"):
        hold_place(department=offices["LIB"], student=student, reason="x" * 256, acting_user=lib_reviewer)
    hold = hold_place(department=offices["LIB"], student=student, reason="Book out", acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="reason is 200,000"):
        holds_release(hold_ids=[hold.pk], acting_user=lib_reviewer, reason=HUGE)
    assert Hold.objects.get(pk=hold.pk).status == Hold.Status.ACTIVE
    with pytest.raises(ValidationError, match="reason is 200,000"):
        request_revoke(request=clearance, acting_user=registry_user, reason=HUGE)
