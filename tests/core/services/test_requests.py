"""Opening, submitting and revoking clearance requests (workflow rules 1 and 4)."""
from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils import timezone

from core.models import Certificate, ClearanceApproval, ClearanceRequest, Department, Notification
from core.selectors.clearance import active_holds_for_approval
from core.services.certificates import certificate_issue
from core.services.requests import request_open, request_revoke, request_submit, requests_open_for_cohort
from tests import factories

pytestmark = pytest.mark.django_db

R = ClearanceRequest.Status
A = ClearanceApproval.Status


def _codes(request):
    return set(request.approvals.values_list("department__code", flat=True))


# --- request_open ---------------------------------------------------------------------------------

def test_opening_creates_one_pending_approval_per_applicable_office(offices, cycle, resident_student,
                                                                    registry_user):
    request, created = request_open(student=resident_student, cycle=cycle, acting_user=registry_user)
    assert created
    request.refresh_from_db()
    assert request.status == R.IN_PROGRESS       # the finance item opens approved: no finance hold (rule 5)
    assert request.opened_by == registry_user
    assert _codes(request) == {"FIN", "LIB", "HOS", "SCH", "SPT", "GOWN", "REG"}
    assert dict(request.approvals.values_list("department__code", "status")) == {
        "FIN": A.APPROVED, **{code: A.PENDING for code in ("LIB", "HOS", "SCH", "SPT", "GOWN", "REG")}}
    assert list(request.approvals.filter(decided_at__isnull=False).values_list("department__code", flat=True)) == [
        "FIN"]


def test_residents_only_office_is_skipped_for_a_non_resident(offices, cycle, student, registry_user):
    request, _ = request_open(student=student, cycle=cycle, acting_user=registry_user)
    assert _codes(request) == {"FIN", "LIB", "SCH", "SPT", "GOWN", "REG"}


def test_office_for_selected_schools_applies_only_to_those_schools(offices, cycle, registry_user):
    sce, spa = factories.SchoolFactory(code="SCE"), factories.SchoolFactory(code="SPA")
    factories.DepartmentFactory(code="LAB", applies_to=Department.AppliesTo.SCHOOLS, schools=[spa])
    in_sce = factories.StudentFactory(school=sce)
    in_spa = factories.StudentFactory(school=spa)
    request_sce, _ = request_open(student=in_sce, cycle=cycle, acting_user=registry_user)
    request_spa, _ = request_open(student=in_spa, cycle=cycle, acting_user=registry_user)
    assert "LAB" not in _codes(request_sce)
    assert "LAB" in _codes(request_spa)


def test_inactive_office_is_skipped(offices, cycle, student, registry_user):
    Department.objects.filter(code="SPT").update(is_active=False)
    request, _ = request_open(student=student, cycle=cycle, acting_user=registry_user)
    assert "SPT" not in _codes(request)
    assert request.approvals.count() == 5


def test_opening_twice_does_nothing_new(offices, cycle, student, registry_user):
    first, created = request_open(student=student, cycle=cycle, acting_user=registry_user)
    again, created_again = request_open(student=student, cycle=cycle, acting_user=registry_user)
    assert created and not created_again
    assert again.pk == first.pk
    assert ClearanceRequest.objects.filter(student=student).count() == 1
    assert ClearanceApproval.objects.filter(request__student=student).count() == 6
    assert first.history.count() == 1


def test_opening_carries_existing_holds_into_the_approvals_view(offices, cycle, student, registry_user):
    hold = factories.HoldFactory(department=offices["LIB"], student=student, reason="Two books not returned")
    factories.HoldFactory(department=offices["LIB"], student=student, status="released")
    request, _ = request_open(student=student, cycle=cycle, acting_user=registry_user)
    lib = request.approvals.get(department__code="LIB")
    spt = request.approvals.get(department__code="SPT")
    assert list(active_holds_for_approval(lib)) == [hold]
    assert not active_holds_for_approval(spt).exists()


def test_opening_records_history_with_the_acting_user(offices, cycle, student, registry_user):
    request, _ = request_open(student=student, cycle=cycle, acting_user=registry_user)
    assert request.history.get().history_user == registry_user
    assert {h.history_user for h in ClearanceApproval.history.filter(request_id=request.pk)} == {registry_user}
    assert ClearanceApproval.history.filter(request_id=request.pk).count() == 6


@pytest.mark.parametrize("dates, closed, message", [
    ((1, 10), False, "opens on"),
    ((-10, -1), False, "closed on"),
    ((-10, 10), True, "has been closed"),
], ids=["not-yet-open", "past", "closed-early"])
def test_opening_in_a_cycle_that_is_not_open_is_refused(offices, student, registry_user, dates, closed, message):
    today = timezone.localdate()
    cycle = factories.ClearanceCycleFactory(opens_on=today + datetime.timedelta(days=dates[0]),
                                            closes_on=today + datetime.timedelta(days=dates[1]), is_closed=closed)
    with pytest.raises(ValidationError) as exc:
        request_open(student=student, cycle=cycle, acting_user=registry_user)
    assert message in exc.value.messages[0]
    assert str(cycle) in exc.value.messages[0]
    assert not ClearanceRequest.objects.exists()
    assert not ClearanceApproval.objects.exists()


def test_a_revoked_request_can_be_followed_by_a_new_one(offices, cycle, student, registry_user):
    first, _ = request_open(student=student, cycle=cycle, acting_user=registry_user)
    request_revoke(request=first, acting_user=registry_user, reason="Opened by mistake")
    second, created = request_open(student=student, cycle=cycle, acting_user=registry_user)
    assert created and second.pk != first.pk
    assert second.approvals.count() == 6
    assert ClearanceRequest.objects.get(pk=first.pk).status == R.REVOKED


def test_opening_notifies_the_student_after_commit(offices, cycle, student, registry_user,
                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request_open(student=student, cycle=cycle, acting_user=registry_user)
    note = Notification.objects.get(user=student.user)
    assert note.title == "Your clearance is open"
    assert str(cycle) in note.message


# --- request_submit (student self-service) --------------------------------------------------------

def test_student_submits_their_own_request(offices, cycle, student):
    request = request_submit(student=student, cycle=cycle, acting_user=student.user)
    assert request.student == student and request.opened_by == student.user
    assert request.approvals.count() == 6


def test_student_cannot_submit_for_someone_else(offices, cycle, student):
    neighbour = factories.StudentFactory(with_user=True)
    with pytest.raises(ValidationError, match="only submit your own"):
        request_submit(student=neighbour, cycle=cycle, acting_user=student.user)
    assert not ClearanceRequest.objects.exists()


def test_student_submitting_twice_is_told_so(offices, cycle, student):
    request_submit(student=student, cycle=cycle, acting_user=student.user)
    with pytest.raises(ValidationError, match="already have a clearance request"):
        request_submit(student=student, cycle=cycle, acting_user=student.user)
    assert ClearanceRequest.objects.count() == 1


def test_student_cannot_submit_in_a_closed_cycle(offices, student):
    cycle = factories.ClearanceCycleFactory(is_closed=True)
    with pytest.raises(ValidationError, match="has been closed"):
        request_submit(student=student, cycle=cycle, acting_user=student.user)
    assert not ClearanceRequest.objects.exists()


# --- requests_open_for_cohort ---------------------------------------------------------------------

def test_opening_for_a_cohort_is_bulk_and_counts_already_open(offices, cycle, registry_user,
                                                              django_assert_max_num_queries):
    cohort = factories.StudentFactory.create_batch(20, expected_graduation_year=2026)
    cohort[0].is_resident = True
    cohort[0].save()
    other_year = factories.StudentFactory(expected_graduation_year=2027)
    request_open(student=cohort[1], cycle=cycle, acting_user=registry_user)
    request_open(student=cohort[2], cycle=cycle, acting_user=registry_user)

    with django_assert_max_num_queries(20):
        result = requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=2026)

    assert result.created_count == 18
    assert result.already_open == 2
    assert result.approvals_created == 18 * 6 + 1  # the resident also gets HOS
    assert ClearanceRequest.objects.filter(cycle=cycle).count() == 20
    assert not ClearanceRequest.objects.filter(student=other_year).exists()
    per_request = set(ClearanceRequest.objects.annotate(n=Count("approvals")).values_list("n", flat=True))
    assert per_request == {6, 7}


def test_cohort_opening_twice_creates_nothing(offices, cycle, registry_user):
    factories.StudentFactory.create_batch(5)
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=2026)
    again = requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=2026)
    assert (again.created_count, again.already_open, again.approvals_created) == (0, 5, 0)
    assert ClearanceApproval.objects.count() == 30


def test_cohort_opening_by_school_or_students(offices, cycle, registry_user):
    spa = factories.SchoolFactory(code="SPA")
    in_sce = factories.StudentFactory.create_batch(3)
    in_spa = factories.StudentFactory.create_batch(2, school=spa)
    by_school = requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=2026, school=spa)
    assert by_school.created_count == 2
    assert set(ClearanceRequest.objects.values_list("student_id", flat=True)) == {s.pk for s in in_spa}
    by_ids = requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[in_sce[0].pk])
    assert by_ids.created_count == 1


def test_cohort_opening_needs_a_selection(offices, cycle, registry_user):
    factories.StudentFactory()
    with pytest.raises(ValidationError, match="Choose a cohort"):
        requests_open_for_cohort(cycle=cycle, acting_user=registry_user)
    assert not ClearanceRequest.objects.exists()


def test_cohort_opening_in_a_closed_cycle_is_refused(offices, registry_user):
    factories.StudentFactory()
    cycle = factories.ClearanceCycleFactory(is_closed=True)
    with pytest.raises(ValidationError, match="has been closed"):
        requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=2026)
    assert not ClearanceRequest.objects.exists()


def test_cohort_opening_queries_do_not_grow_with_students(offices, cycle, registry_user, sqlite_param_limit):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def measure(n, year):
        factories.StudentFactory.create_batch(n, expected_graduation_year=year)
        with CaptureQueriesContext(connection) as ctx:
            result = requests_open_for_cohort(cycle=cycle, acting_user=registry_user, graduation_year=year)
        assert result.created_count == n
        return len(ctx)

    assert measure(5, 2030) == measure(60, 2031)


# --- request_revoke -------------------------------------------------------------------------------

def test_revoke_requires_a_reason_and_changes_nothing(clearance, registry_user, complete_request):
    complete_request(clearance)
    certificate = certificate_issue(request=clearance, acting_user=registry_user)
    for reason in ("", "   "):
        with pytest.raises(ValidationError, match="reason is required"):
            request_revoke(request=clearance, acting_user=registry_user, reason=reason)
    clearance.refresh_from_db()
    certificate.refresh_from_db()
    assert clearance.status == R.COMPLETED
    assert certificate.is_valid


def test_revoke_revokes_the_request_and_its_certificate(clearance, registry_user, complete_request, student,
                                                        django_capture_on_commit_callbacks):
    complete_request(clearance)
    certificate = certificate_issue(request=clearance, acting_user=registry_user)
    with django_capture_on_commit_callbacks(execute=True):
        request_revoke(request=clearance, acting_user=registry_user, reason="Library fine found after clearance")
    clearance.refresh_from_db()
    certificate.refresh_from_db()
    assert clearance.status == R.REVOKED
    assert clearance.revoked_by == registry_user
    assert clearance.revoked_reason == "Library fine found after clearance"
    assert clearance.revoked_at is not None
    assert not certificate.is_valid
    assert certificate.revoked_reason == "Library fine found after clearance"
    assert certificate.revoked_by == registry_user
    note = Notification.objects.get(user=student.user, kind=Notification.Kind.REVOKED)
    assert "Library fine" in note.message
    assert clearance.history.first().history_change_reason == "Revoked: Library fine found after clearance"


def test_revoke_twice_is_refused(clearance, registry_user):
    request_revoke(request=clearance, acting_user=registry_user, reason="Withdrawn")
    with pytest.raises(ValidationError, match="already revoked"):
        request_revoke(request=clearance, acting_user=registry_user, reason="Again")
    assert ClearanceRequest.objects.get(pk=clearance.pk).revoked_reason == "Withdrawn"


def test_revoke_without_certificate(clearance, registry_user):
    request_revoke(request=clearance, acting_user=registry_user, reason="Withdrawn")
    assert ClearanceRequest.objects.get(pk=clearance.pk).status == R.REVOKED
    assert not Certificate.objects.exists()
