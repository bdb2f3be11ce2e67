"""Delegations: a reviewer lends their office's rights to a colleague for a date range."""
from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core import permissions
from core.models import ClearanceApproval, Delegation
from core.services.approvals import approval_approve
from core.services.delegations import delegation_create, delegation_revoke

pytestmark = pytest.mark.django_db


def _day(offset):
    return timezone.localdate() + datetime.timedelta(days=offset)


@pytest.fixture
def colleague(make_user):
    return make_user(permissions.STAFF, email="colleague@clearance.test")


def test_delegate_decides_the_offices_items_during_the_delegation(clearance, approval, offices, lib_reviewer,
                                                                  colleague):
    lib = approval(clearance, "LIB")
    with pytest.raises(ValidationError, match="not in your queue"):
        approval_approve(approval=lib, acting_user=colleague)
    delegation = delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                                   starts_on=_day(0), ends_on=_day(5), acting_user=lib_reviewer, reason="Leave")
    assert delegation.history.get().history_user == lib_reviewer
    approval_approve(approval=lib, acting_user=colleague)
    stored = ClearanceApproval.objects.get(pk=lib.pk)
    assert (stored.status, stored.decided_by) == (ClearanceApproval.Status.APPROVED, colleague)


def test_a_future_delegation_grants_nothing_today(clearance, approval, offices, lib_reviewer, colleague):
    delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                      starts_on=_day(2), ends_on=_day(5), acting_user=lib_reviewer)
    assert not permissions.approvals_for(colleague).exists()
    assert list(permissions.reviewable_departments(colleague, on=_day(3)).values_list("code", flat=True)) == ["LIB"]
    assert not permissions.reviewable_departments(colleague, on=_day(6)).exists()


def test_ending_a_delegation_withdraws_the_rights(clearance, approval, offices, lib_reviewer, colleague):
    delegation = delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                                   starts_on=_day(0), ends_on=_day(5), acting_user=lib_reviewer)
    assert permissions.can_decide(colleague, approval(clearance, "LIB"))
    delegation_revoke(delegation=delegation, acting_user=lib_reviewer)
    assert Delegation.objects.get(pk=delegation.pk).revoked_at is not None
    assert not permissions.can_decide(colleague, approval(clearance, "LIB"))
    with pytest.raises(ValidationError, match="not in your queue"):
        approval_approve(approval=approval(clearance, "LIB"), acting_user=colleague)


def test_an_administrator_may_delegate_for_a_reviewer(offices, lib_reviewer, colleague, superuser):
    delegation = delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                                   starts_on=_day(0), ends_on=_day(0), acting_user=superuser)
    assert delegation.history.get().history_user == superuser


@pytest.mark.parametrize("case, message", [
    ("someone_else_acts", "Only the reviewer themselves or an administrator"),
    ("to_self", "Delegate to someone else"),
    ("dates_reversed", "ends before it starts"),
    ("already_over", "would already be over"),
    ("office_not_theirs", "does not review SPT in their own right, so cannot delegate it"),
    ("starts_in_the_past", "starts today or later"),
    ("from_year_1_to_9999", "starts today or later"),
    ("longer_than_a_year", "lasts at most 365 days; this one would last 366"),
    ("to_year_9999", "lasts at most 365 days"),
    ("reason_too_long", "at most 255 are allowed"),
])
def test_delegation_refusals(offices, lib_reviewer, colleague, make_user, case, message):
    args = dict(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague, starts_on=_day(0),
                ends_on=_day(3), acting_user=lib_reviewer)
    if case == "someone_else_acts":
        args["acting_user"] = colleague
    elif case == "to_self":
        args["to_user"] = lib_reviewer
    elif case == "dates_reversed":
        args.update(starts_on=_day(3), ends_on=_day(1))
    elif case == "already_over":
        args.update(starts_on=_day(-5), ends_on=_day(-1))
    elif case == "office_not_theirs":
        args["department"] = offices["SPT"]
    elif case == "starts_in_the_past":
        args.update(starts_on=_day(-1))
    elif case == "from_year_1_to_9999":
        args.update(starts_on=datetime.date(1, 1, 1), ends_on=datetime.date(9999, 12, 31))
    elif case == "longer_than_a_year":
        args.update(ends_on=_day(365))
    elif case == "to_year_9999":
        args.update(ends_on=datetime.date(9999, 12, 31))
    elif case == "reason_too_long":
        args["reason"] = "x" * 256
    with pytest.raises(ValidationError, match=message):
        delegation_create(**args)
    assert not Delegation.objects.exists()


def test_a_delegation_may_last_a_year_and_its_length_is_a_setting(offices, lib_reviewer, colleague, settings):
    delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                      starts_on=_day(0), ends_on=_day(364), acting_user=lib_reviewer)
    settings.DELEGATION_MAX_DAYS = 7
    with pytest.raises(ValidationError, match="at most 7 days"):
        delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                          starts_on=_day(1), ends_on=_day(8), acting_user=lib_reviewer)


def test_revoke_refusals(offices, lib_reviewer, colleague):
    delegation = delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague,
                                   starts_on=_day(0), ends_on=_day(3), acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="Only the reviewer who delegated or an administrator"):
        delegation_revoke(delegation=delegation, acting_user=colleague)
    assert Delegation.objects.get(pk=delegation.pk).revoked_at is None
    delegation_revoke(delegation=delegation, acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="already ended"):
        delegation_revoke(delegation=delegation, acting_user=lib_reviewer)


def test_a_delegate_cannot_delegate_further(offices, make_reviewer, make_user):
    from datetime import timedelta

    from django.utils import timezone

    from core.services.delegations import delegation_create
    lib = make_reviewer("LIB")
    deputy = make_user(permissions.STAFF)
    third = make_user(permissions.STAFF)
    today = timezone.localdate()
    delegation_create(department=offices["LIB"], from_user=lib, to_user=deputy, starts_on=today,
                      ends_on=today + timedelta(days=3), acting_user=lib)
    with pytest.raises(ValidationError, match="in their own right"):
        delegation_create(department=offices["LIB"], from_user=deputy, to_user=third, starts_on=today,
                          ends_on=today + timedelta(days=1), acting_user=deputy)


# --- safe and clear ---------------------------------------------------------------------------

def test_only_active_office_staff_may_receive_a_delegation(offices, lib_reviewer, make_user, student):
    inactive = make_user(permissions.STAFF, email="gone@clearance.test")
    inactive.is_active = False
    inactive.save()
    for to in (student.user, make_user(permissions.FINANCE, is_staff=False), inactive, make_user()):
        with pytest.raises(ValidationError, match="not active office staff"):
            delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=to, starts_on=_day(0),
                              ends_on=_day(3), acting_user=lib_reviewer)
    assert not Delegation.objects.exists()


def test_an_overlapping_delegation_of_the_same_office_to_the_same_person_is_refused(offices, lib_reviewer,
                                                                                  colleague, make_reviewer):
    delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague, starts_on=_day(2),
                      ends_on=_day(9), acting_user=lib_reviewer)
    with pytest.raises(ValidationError, match="already has LIB"):
        delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague, starts_on=_day(9),
                          ends_on=_day(12), acting_user=lib_reviewer)
    # after it, or another office: fine
    delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague, starts_on=_day(10),
                      ends_on=_day(12), acting_user=lib_reviewer)
    spt = make_reviewer("SPT")
    delegation_create(department=offices["SPT"], from_user=spt, to_user=colleague, starts_on=_day(2),
                      ends_on=_day(9), acting_user=spt)


def test_a_delegates_decision_says_on_whose_behalf_and_both_are_emailed_when_it_starts(
        clearance, approval, offices, lib_reviewer, colleague, open_request, django_capture_on_commit_callbacks):
    from django.core import mail

    from core.services.delegations import delegations_started_send
    with django_capture_on_commit_callbacks(execute=True):
        delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague, starts_on=_day(0),
                          ends_on=_day(5), acting_user=lib_reviewer, reason="Annual leave")
    (message,) = mail.outbox
    assert set(message.to) == {colleague.email, lib_reviewer.email} and "Annual leave" in message.body
    assert delegations_started_send() and len(mail.outbox) == 1          # once
    lib = approval(clearance, "LIB")
    approval_approve(approval=lib, acting_user=colleague)
    record = ClearanceApproval.objects.get(pk=lib.pk).history.first()
    assert record.history_user == colleague
    assert record.history_change_reason.endswith(f"(on behalf of {lib_reviewer.full_name or lib_reviewer.email})")
    # the delegator's own decisions say nothing of the kind
    from tests import factories
    other = approval(open_request(factories.StudentFactory()), "LIB")
    approval_approve(approval=other, acting_user=lib_reviewer)
    assert "on behalf" not in (ClearanceApproval.objects.get(pk=other.pk).history.first().history_change_reason or "")


def test_a_future_delegation_is_told_the_day_it_starts(offices, lib_reviewer, colleague):
    from django.core import mail

    from core.services.delegations import delegations_started_send
    delegation_create(department=offices["LIB"], from_user=lib_reviewer, to_user=colleague, starts_on=_day(3),
                      ends_on=_day(5), acting_user=lib_reviewer)
    assert delegations_started_send() == [] and not mail.outbox
    assert len(delegations_started_send(today=_day(3))) == 1 and len(mail.outbox) == 1
