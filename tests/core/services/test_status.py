"""Request status is derived from the approvals, always by derive_request_status."""
from __future__ import annotations

import pytest
from django.utils import timezone

from core.models import ClearanceApproval, ClearanceRequest, Notification
from core.services.status import derive_request_status, requests_refresh_status

A = ClearanceApproval.Status
R = ClearanceRequest.Status


@pytest.mark.parametrize("statuses, expected", [
    ([], R.PENDING),
    ([A.PENDING], R.PENDING),
    ([A.PENDING, A.PENDING], R.PENDING),
    ([A.APPROVED, A.PENDING], R.IN_PROGRESS),
    ([A.WAIVED, A.PENDING], R.IN_PROGRESS),
    ([A.APPROVED], R.COMPLETED),
    ([A.APPROVED, A.WAIVED], R.COMPLETED),
    ([A.WAIVED, A.WAIVED], R.COMPLETED),
    ([A.REJECTED], R.ON_HOLD),
    ([A.APPROVED, A.REJECTED], R.ON_HOLD),
    ([A.PENDING, A.REJECTED, A.APPROVED], R.ON_HOLD),
], ids=lambda v: "-".join(v) if isinstance(v, list) else v)
def test_derive_request_status(statuses, expected):
    assert derive_request_status(statuses) == expected


def test_derive_accepts_any_iterable():
    assert derive_request_status(iter([A.APPROVED, A.APPROVED])) == R.COMPLETED


@pytest.mark.parametrize("statuses", [[], [A.PENDING], [A.REJECTED], [A.APPROVED]])
def test_revoked_wins_over_everything(statuses):
    assert derive_request_status(statuses, revoked=True) == R.REVOKED
    assert derive_request_status(statuses, revoked=True, was_completed=True) == R.REVOKED


@pytest.mark.parametrize("statuses", [[A.REJECTED], [A.PENDING, A.APPROVED], []])
def test_a_completed_request_stays_completed(statuses):
    assert derive_request_status(statuses, was_completed=True) == R.COMPLETED


# --- requests_refresh_status ----------------------------------------------------------------------

@pytest.mark.django_db
def test_refresh_saves_only_changed_requests_with_history(clearance, registry_user, open_request):
    from tests import factories
    untouched = open_request(factories.StudentFactory())
    ClearanceApproval.objects.filter(request=clearance, department__code="LIB").update(
        status=A.REJECTED, reason="Book", decided_at=timezone.now())
    changed = requests_refresh_status([clearance.pk, untouched.pk], acting_user=registry_user, reason="Recheck")
    assert changed == [clearance.pk]
    clearance.refresh_from_db()
    assert clearance.status == R.ON_HOLD
    assert clearance.history.first().history_change_reason == "Recheck"
    assert clearance.history.first().history_user == registry_user
    assert untouched.history.count() == 1


@pytest.mark.django_db
def test_refresh_completes_and_notifies_once(clearance, registry_user, student, django_capture_on_commit_callbacks):
    clearance.approvals.update(status=A.APPROVED, decided_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_refresh_status([clearance.pk], acting_user=registry_user) == [clearance.pk]
        assert requests_refresh_status([clearance.pk], acting_user=registry_user) == []
    clearance.refresh_from_db()
    assert clearance.status == R.COMPLETED
    assert clearance.completed_at is not None
    assert Notification.objects.filter(user=student.user, kind=Notification.Kind.COMPLETED).count() == 1


@pytest.mark.django_db
def test_refresh_never_reopens_a_completed_or_revoked_request(clearance, registry_user, complete_request):
    complete_request(clearance)
    clearance.approvals.filter(department__code="LIB").update(status=A.REJECTED, reason="Late fine")
    assert requests_refresh_status([clearance.pk], acting_user=registry_user) == []
    assert ClearanceRequest.objects.get(pk=clearance.pk).status == R.COMPLETED
