"""/registry/ through the HTTP client, as the registry (and as people who are not) would use it."""
from __future__ import annotations

import datetime
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from core import permissions
from core.models import Certificate, ClearanceApproval, ClearanceCycle, ClearanceRequest
from core.services.approvals import approvals_approve, approvals_reject, approvals_waive
from core.services.certificates import certificate_issue
from core.services.holds import hold_place
from core.services.requests import request_revoke, requests_open_for_cohort
from tests import factories
from tests.conftest import messages_of

R = ClearanceRequest.Status

REQUESTS = "registry:core_clearancerequest_changelist"
STUDENTS = "registry:core_student_changelist"
CYCLES = "registry:core_clearancecycle_changelist"
OPEN_COHORT = "registry:core_clearancerequest_open_for_cohort"


def url(name, *args):
    return reverse(name, args=args)


@pytest.fixture
def registry_client(client, registry_user):
    client.force_login(registry_user)
    return client


def cohort(n, year=2026, **fields):
    return factories.StudentFactory.create_batch(n, expected_graduation_year=year, **fields)


# --- access ---------------------------------------------------------------------------------------

def test_registry_sees_every_list_and_the_dashboard(registry_client, clearance, student):
    for name in (REQUESTS, STUDENTS, CYCLES):
        response = registry_client.get(url(name))
        assert response.status_code == 200, name
    assert student.registration_number in registry_client.get(url(REQUESTS)).content.decode()
    assert student.registration_number in registry_client.get(url(STUDENTS)).content.decode()
    assert registry_client.get(url("registry:index")).status_code == 200
    detail = registry_client.get(url("registry:core_clearancerequest_change", clearance.pk))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()  # read-only
    assert registry_client.get(url("registry:core_clearancerequest_history", clearance.pk)).status_code == 200
    student_detail = registry_client.get(url("registry:core_student_change", student.pk))
    assert student_detail.status_code == 200 and 'name="_save"' not in student_detail.content.decode()


@pytest.fixture(params=["staff", "finance", "student"])
def outsider(request, make_reviewer, finance_user, student):
    return {"staff": lambda: make_reviewer("LIB"), "finance": lambda: finance_user,
            "student": lambda: student.user}[request.param]()


def test_other_roles_are_refused_everywhere(client, outsider, offices, cycle, clearance):
    cohort(2)
    client.force_login(outsider)
    before = ClearanceRequest.objects.count()
    for path in (url("registry:index"), url(REQUESTS), url(STUDENTS), url(CYCLES),
                 url("registry:core_clearancerequest_change", clearance.pk), url(OPEN_COHORT),
                 url("registry:core_clearancerequest_revoke", clearance.pk)):
        response = client.get(path)
        assert response.status_code == 302 and "/registry/login/" in response["Location"], path
    response = client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": 2026})
    assert response.status_code == 302 and "/registry/login/" in response["Location"]
    client.post(url("registry:core_clearancerequest_revoke", clearance.pk), {"reason": "x", "apply": "1"})
    assert ClearanceRequest.objects.count() == before
    clearance.refresh_from_db()
    assert clearance.status != R.REVOKED


# --- open clearance for a cohort ------------------------------------------------------------------

def test_open_for_cohort_creates_counts_and_is_idempotent(registry_client, offices, cycle, open_request):
    students = cohort(3)
    later = cohort(2, year=2027)
    open_request(students[0])
    response = registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": "2026",
                                                       "confirm": "1"})
    assert response.status_code == 302
    assert f"cycle__id__exact={cycle.pk}" in response["Location"]
    text = messages_of(response)
    assert any("for 2 students" in m for m in text), text
    assert any(m.startswith("1 student already had a request") for m in text), text
    opened = ClearanceRequest.objects.filter(cycle=cycle)
    assert set(opened.values_list("student_id", flat=True)) == {s.pk for s in students}
    assert not opened.filter(student__in=later).exists()
    # six offices apply to a non-resident: one pending approval each
    assert ClearanceApproval.objects.filter(request__student=students[1]).count() == 6

    registry_client.get(response["Location"])  # the page shows (and so consumes) the messages
    again = registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": "2026", "confirm": "1"})
    text = messages_of(again)
    assert any(m.startswith("3 students already had a request") for m in text), text
    assert not any("Opened clearance" in m for m in text)
    assert ClearanceRequest.objects.filter(cycle=cycle).count() == 3


def test_open_for_cohort_narrowed_to_a_school(registry_client, offices, cycle):
    sce = cohort(2)
    spa = cohort(2, school=factories.SchoolFactory(code="SPA"))
    registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": "2026",
                                            "school": spa[0].school_id, "confirm": "1"})
    assert set(ClearanceRequest.objects.values_list("student_id", flat=True)) == {s.pk for s in spa}
    assert not ClearanceRequest.objects.filter(student__in=sce).exists()


def test_open_for_cohort_refusals_are_form_errors(registry_client, offices, cycle):
    cohort(2)
    closed = factories.ClearanceCycleFactory(name="2025 graduation", is_closed=True)
    response = registry_client.post(url(OPEN_COHORT), {"cycle": closed.pk, "graduation_year": "2026"})
    assert response.status_code == 200
    assert "The cycle 2025 graduation has been closed." in response.content.decode()
    upcoming = factories.ClearanceCycleFactory(
        name="2027 graduation", opens_on=timezone.localdate() + datetime.timedelta(days=10),
        closes_on=timezone.localdate() + datetime.timedelta(days=40))
    response = registry_client.post(url(OPEN_COHORT), {"cycle": upcoming.pk, "graduation_year": "2026"})
    assert "The cycle 2027 graduation opens on" in response.content.decode()
    response = registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": ""})
    assert response.status_code == 200
    assert "Choose a cohort" in response.content.decode()
    assert not ClearanceRequest.objects.exists()


def test_open_for_cohort_page_is_linked_from_dashboard_and_requests_list(registry_client, cycle):
    target = url(OPEN_COHORT)
    assert target in registry_client.get(url("registry:index")).content.decode()
    assert target in registry_client.get(url(REQUESTS)).content.decode()
    page = registry_client.get(target)
    assert page.status_code == 200 and 'name="graduation_year"' in page.content.decode()


# --- open clearance for selected students ---------------------------------------------------------

def _open_selected(client, students, **extra):
    data = {"action": "open_clearance_for_selected", "_selected_action": [s.pk for s in students], **extra}
    return client.post(url(STUDENTS), data)


def test_open_for_selected_students(registry_client, offices, cycle, open_request):
    students = cohort(3)
    others = cohort(2)
    open_request(students[0])
    response = _open_selected(registry_client, students)
    assert response.status_code == 302
    text = messages_of(response)
    assert any("for 2 students" in m for m in text), text
    assert any(m.startswith("1 student already had a request") for m in text), text
    assert set(ClearanceRequest.objects.values_list("student_id", flat=True)) == {s.pk for s in students}
    assert not ClearanceRequest.objects.filter(student__in=others).exists()


def test_open_for_selected_asks_which_cycle_when_several_are_open(registry_client, offices, cycle):
    students = cohort(2)
    second = factories.ClearanceCycleFactory(name="2026 supplementary")
    page = _open_selected(registry_client, students)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Open clearance for the selected students" in body and "2026 supplementary" in body
    assert not ClearanceRequest.objects.exists()
    done = _open_selected(registry_client, students, apply="1", cycle=second.pk)
    assert done.status_code == 302
    assert set(ClearanceRequest.objects.values_list("cycle_id", flat=True)) == {second.pk}
    assert ClearanceRequest.objects.count() == 2


def test_open_for_selected_refused_when_no_cycle_is_open(registry_client, offices):
    factories.ClearanceCycleFactory(name="2025 graduation", is_closed=True)
    students = cohort(2)
    response = _open_selected(registry_client, students)
    assert any("No clearance cycle is open" in m for m in messages_of(response))
    assert not ClearanceRequest.objects.exists()


def test_students_filters_and_search(registry_client, offices, cycle, open_request):
    with_request, without = cohort(2)
    open_request(with_request)
    body = registry_client.get(url(STUDENTS), {"has_open_request": "yes"}).content.decode()
    assert with_request.registration_number in body and without.registration_number not in body
    body = registry_client.get(url(STUDENTS), {"has_open_request": "no"}).content.decode()
    assert without.registration_number in body and with_request.registration_number not in body
    body = registry_client.get(url(STUDENTS), {"q": without.registration_number.lower()}).content.decode()
    assert without.registration_number in body and with_request.registration_number not in body


# --- progress badges and the list's queries ---------------------------------------------------------

def test_badges_show_each_office_coloured_by_status(registry_client, clearance, approval, superuser):
    approvals_approve(approval_ids=[approval(clearance, "LIB").pk], acting_user=superuser).raise_if_refused()
    approvals_reject(approval_ids=[approval(clearance, "SCH").pk], acting_user=superuser,
                     reason="Project not submitted").raise_if_refused()
    approvals_waive(approval_ids=[approval(clearance, "SPT").pk], acting_user=superuser,
                    reason="Never used the facilities").raise_if_refused()
    body = registry_client.get(url(REQUESTS)).content.decode()
    badges = {office: classes for classes, office in re.findall(r'<span class="([^"]+)" data-office="(\w+)"', body)}
    assert set(badges) == {"FIN", "LIB", "SCH", "SPT", "GOWN", "REG"}
    assert "bg-green-100" in badges["LIB"]
    assert "bg-red-100" in badges["SCH"]
    assert "bg-blue-100" in badges["SPT"]
    assert "bg-green-100" in badges["FIN"]       # approved at opening: no finance hold (rule 5)
    assert "bg-base-500/8" in badges["REG"]
    assert 'data-office="SCH" data-status="rejected"' in body


def test_requests_list_runs_as_many_queries_for_50_rows_as_for_1(
        registry_client, offices, cycle, registry_user, django_assert_max_num_queries):
    students = cohort(50)
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[students[0].pk])
    registry_client.get(url(REQUESTS))  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as one_row:
        response = registry_client.get(url(REQUESTS))
    assert response.content.decode().count('data-office="LIB"') == 1
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[s.pk for s in students[1:]])
    with django_assert_max_num_queries(len(one_row.captured_queries)):
        response = registry_client.get(url(REQUESTS))
    assert response.content.decode().count('data-office="LIB"') == 50


def test_students_list_runs_as_many_queries_for_30_rows_as_for_1(
        registry_client, offices, cycle, registry_user, django_assert_max_num_queries):
    first = cohort(1)[0]
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[first.pk])
    registry_client.get(url(STUDENTS))
    with CaptureQueriesContext(connection) as one_row:
        registry_client.get(url(STUDENTS))
    others = cohort(29, school=factories.SchoolFactory(code="SPA"))
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[s.pk for s in others[:10]])
    with django_assert_max_num_queries(len(one_row.captured_queries)):
        response = registry_client.get(url(STUDENTS))
    assert response.content.decode().count("SPA/CS/") >= 29


def test_completed_but_now_held_filter(registry_client, offices, cycle, open_request, complete_request,
                                       superuser):
    held, clean = cohort(2)
    held_request = complete_request(open_request(held))
    complete_request(open_request(clean))
    hold_place(department=offices["LIB"], student=held, reason="Book not returned", acting_user=superuser)
    body = registry_client.get(url(REQUESTS), {"held": "yes"}).content.decode()
    assert held.registration_number in body and clean.registration_number not in body
    held_request.refresh_from_db()
    assert held_request.status == R.COMPLETED


# --- revoke -------------------------------------------------------------------------------------------

@pytest.fixture
def certified(clearance, complete_request, registry_user):
    request = complete_request(clearance)
    certificate_issue(request=request, acting_user=registry_user)
    return request


def _revoke(client, requests, **extra):
    data = {"action": "revoke_selected", "_selected_action": [r.pk for r in requests], **extra}
    return client.post(url(REQUESTS), data)


def test_revoke_asks_for_a_reason_then_revokes_request_and_certificate(registry_client, certified, registry_user):
    page = _revoke(registry_client, [certified])
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    certified.refresh_from_db()
    assert certified.status == R.COMPLETED

    response = _revoke(registry_client, [certified], apply="1", reason="Library hold placed after completion")
    assert response.status_code == 302
    assert any("Revoked 1 clearance" in m for m in messages_of(response))
    certified.refresh_from_db()
    assert certified.status == R.REVOKED and certified.revoked_by == registry_user
    assert certified.revoked_reason == "Library hold placed after completion"
    certificate = Certificate.objects.get(request=certified)
    assert certificate.revoked_at is not None and not certificate.is_valid
    assert certified.history.first().history_user == registry_user


def test_revoke_without_reason_is_a_form_error_and_changes_nothing(registry_client, certified):
    response = _revoke(registry_client, [certified], apply="1", reason="   ")
    assert response.status_code == 200
    assert "A reason is required to revoke a clearance." in response.content.decode()
    certified.refresh_from_db()
    assert certified.status == R.COMPLETED and certified.revoked_at is None
    assert Certificate.objects.get(request=certified).is_valid


def test_revoke_reports_refused_rows(registry_client, offices, cycle, open_request, registry_user):
    first, second = cohort(2)
    already = open_request(first)
    request_revoke(request=already, acting_user=registry_user, reason="Withdrew")
    other = open_request(second)
    response = _revoke(registry_client, [already, other], apply="1", reason="Registry decision")
    text = messages_of(response)
    assert any("Revoked 1 clearance" in m for m in text), text
    assert any("Refused 1" in m and first.registration_number in m and "already revoked" in m for m in text), text
    other.refresh_from_db()
    assert other.status == R.REVOKED


def test_revoke_from_the_detail_page(registry_client, certified):
    target = url("registry:core_clearancerequest_revoke", certified.pk)
    assert target in registry_client.get(url("registry:core_clearancerequest_change", certified.pk)).content.decode()
    empty = registry_client.post(target, {"reason": ""})
    assert empty.status_code == 200 and "A reason is required" in empty.content.decode()
    certified.refresh_from_db()
    assert certified.status == R.COMPLETED
    done = registry_client.post(target, {"reason": "Fees found unpaid"})
    assert done.status_code == 302
    certified.refresh_from_db()
    assert certified.status == R.REVOKED
    assert not Certificate.objects.get(request=certified).is_valid


# --- certificates ---------------------------------------------------------------------------------

def test_issue_certificate_for_a_completed_request(registry_client, clearance, complete_request, registry_user):
    target = url("registry:core_clearancerequest_issue_certificate", clearance.pk)
    refused = registry_client.post(target)
    assert any("Only a completed clearance gets a certificate" in m for m in messages_of(refused))
    assert not Certificate.objects.exists()

    complete_request(clearance)
    assert registry_client.get(target).status_code == 200  # a confirmation page: GET changes nothing
    assert not Certificate.objects.exists()
    response = registry_client.post(target)
    assert response.status_code == 302
    certificate = Certificate.objects.get(request=clearance)
    assert certificate.issued_by == registry_user
    assert any(certificate.code in m for m in messages_of(response))
    again = registry_client.post(target)
    assert any("already issued" in m for m in messages_of(again))
    assert Certificate.objects.count() == 1


# --- cycles -----------------------------------------------------------------------------------------

def test_cycle_create_and_close_with_history(registry_client, registry_user):
    today = timezone.localdate()
    data = {"name": "2027 graduation", "graduation_year": "2027", "opens_on": today.isoformat(),
            "closes_on": (today + datetime.timedelta(days=30)).isoformat(), "max_resubmissions": "2"}
    response = registry_client.post(url("registry:core_clearancecycle_add"), data)
    assert response.status_code == 302
    created = ClearanceCycle.objects.get(name="2027 graduation")
    record = created.history.first()
    assert record.history_user == registry_user and record.history_change_reason == "Cycle created"

    response = registry_client.post(url("registry:core_clearancecycle_change", created.pk), {**data, "is_closed": "on"})
    assert response.status_code == 302
    created.refresh_from_db()
    assert created.is_closed and not created.is_open
    assert created.history.first().history_change_reason == "Cycle closed"


def test_cycle_closing_before_opening_is_refused(registry_client):
    today = timezone.localdate()
    response = registry_client.post(url("registry:core_clearancecycle_add"), {
        "name": "Backwards", "opens_on": today.isoformat(),
        "closes_on": (today - datetime.timedelta(days=1)).isoformat()})
    assert response.status_code == 200
    assert not ClearanceCycle.objects.filter(name="Backwards").exists()


# --- dashboard ----------------------------------------------------------------------------------------

def test_dashboard_numbers(registry_client, offices, cycle, open_request, complete_request, superuser,
                          registry_user):
    done, held, waiting, revoked = cohort(4)
    complete_request(open_request(done))
    on_hold = open_request(held)
    approvals_reject(approval_ids=[on_hold.approvals.get(department__code="LIB").pk], acting_user=superuser,
                     reason="Book not returned").raise_if_refused()
    pending = open_request(waiting)
    request_revoke(request=open_request(revoked), acting_user=registry_user, reason="Withdrew")
    # the LIB approval of the pending request has waited 30 days (LIB's SLA is 7)
    pending.approvals.filter(department__code="LIB").update(
        waiting_since=timezone.now() - datetime.timedelta(days=30))
    hold_place(department=offices["SPT"], student=done, reason="Kit not returned", acting_user=superuser)

    response = registry_client.get(url("registry:index"))
    assert response.status_code == 200
    data = response.context["registry"]
    assert data["completion"] == {"total": 3, "completed": 1, "rate": 33.3}
    # the waiting request is in progress: its finance item opened approved (rule 5)
    assert data["status_counts"] == {R.PENDING: 0, R.IN_PROGRESS: 1, R.ON_HOLD: 1, R.COMPLETED: 1, R.REVOKED: 1}
    assert data["completed_but_now_held"] == 1
    top = data["departments"][0]
    assert (top["code"], top["pending"], top["rejected"], top["overdue"], top["held"]) == ("LIB", 1, 1, 1, 2)
    others = {d["code"]: d for d in data["departments"][1:]}
    assert (others["FIN"]["pending"], others["FIN"]["rejected"], others["FIN"]["overdue"]) == (0, 0, 0)
    assert (others["SPT"]["pending"], others["SPT"]["rejected"], others["SPT"]["overdue"]) == (2, 0, 0)
    assert "HOS" not in others  # applies to residents only; nobody here is one
    body = response.content.decode()
    assert '<span data-kpi="completion-rate">33.3%</span>' in body
    assert '<span data-kpi="completed-but-now-held" class="text-red-600 dark:text-red-400">1</span>' in body
    assert f'{url(REQUESTS)}?held=yes' in body


def _issue_selected(client, requests, **extra):
    data = {"action": "issue_certificates_selected", "_selected_action": [r.pk for r in requests], **extra}
    return client.post(url(REQUESTS), data)


def test_issue_certificates_in_bulk_reports_what_it_issued_and_refused_row_by_row(
        registry_client, offices, cycle, open_request, complete_request, registry_user):
    done, pending, issued = cohort(3)
    done_request = complete_request(open_request(done))
    pending_request = open_request(pending)
    issued_request = complete_request(open_request(issued))
    first = certificate_issue(request=issued_request, acting_user=registry_user)

    response = _issue_selected(registry_client, [done_request, pending_request, issued_request])

    assert response.status_code == 302
    text = messages_of(response)
    assert any("Issued 1 certificate." in m for m in text), text
    refused = next(m for m in text if "Refused 2" in m)
    assert f"{pending.registration_number}: Only a completed clearance gets a certificate; this one is in progress" \
        in refused
    assert f"{issued.registration_number}: A certificate was already issued for this clearance " \
           f"(verification code {first.code})" in refused
    assert Certificate.objects.get(request=done_request).issued_by == registry_user
    assert not Certificate.objects.filter(request=pending_request).exists()
    assert Certificate.objects.get(request=issued_request).code == first.code


def test_the_bulk_issue_is_refused_to_a_registry_user_without_the_permission(
        client, make_user, offices, cycle, open_request, complete_request):
    from django.contrib.auth.models import Group, Permission
    request = complete_request(open_request(cohort(1)[0]))
    clerk = make_user(permissions.REGISTRY)
    group = Group.objects.get(name=permissions.REGISTRY)
    group.permissions.remove(Permission.objects.get(codename="add_certificate"))
    client.force_login(clerk)
    client.post(url(REQUESTS), {"action": "issue_certificates_selected", "_selected_action": [request.pk]})
    assert not Certificate.objects.exists()


CERTIFICATES = "registry:core_certificate_changelist"


def test_certificates_list_filters_and_links_to_each_pdf(registry_client, offices, cycle, open_request,
                                                         complete_request, registry_user):
    valid_student, revoked_student = cohort(2)
    valid = certificate_issue(request=complete_request(open_request(valid_student)), acting_user=registry_user)
    revoked_request = complete_request(open_request(revoked_student))
    revoked = certificate_issue(request=revoked_request, acting_user=registry_user)
    request_revoke(request=revoked_request, acting_user=registry_user, reason="Hold found")

    body = registry_client.get(url(CERTIFICATES)).content.decode()
    assert valid.code in body and revoked.code in body
    assert url("registry:certificate_pdf", valid.pk) in body and url("registry:certificate_pdf", revoked.pk) in body
    assert url(CERTIFICATES) in registry_client.get(url("registry:index")).content.decode()  # sidebar

    only_valid = registry_client.get(url(CERTIFICATES), {"status": "valid"}).content.decode()
    assert valid.code in only_valid and revoked.code not in only_valid
    only_revoked = registry_client.get(url(CERTIFICATES), {"status": "revoked"}).content.decode()
    assert revoked.code in only_revoked and valid.code not in only_revoked
    other_cycle = factories.ClearanceCycleFactory(name="2027 graduation")
    none = registry_client.get(url(CERTIFICATES), {"request__cycle__id__exact": other_cycle.pk}).content.decode()
    assert valid.code not in none and revoked.code not in none
    assert registry_client.get(url("registry:core_certificate_add")).status_code == 403


def test_registry_downloads_the_pdf_from_the_request_page_revoked_ones_stamped(registry_client, certified,
                                                                                registry_user):
    certificate = Certificate.objects.get(request=certified)
    pdf_url = url("registry:certificate_pdf", certificate.pk)
    assert pdf_url in registry_client.get(url("registry:core_clearancerequest_change", certified.pk)).content.decode()

    response = registry_client.get(pdf_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == \
        f'attachment; filename="certificate-{certified.student.registration_number.replace("/", "-")}.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert certificate.code in text and "REVOKED" not in text

    request_revoke(request=certified, acting_user=registry_user, reason="Fees found unpaid")
    stamped = registry_client.get(pdf_url)
    assert stamped.status_code == 200
    assert "REVOKED" in PdfReader(io.BytesIO(stamped.content)).pages[0].extract_text()


def test_other_roles_cannot_have_a_certificate_pdf(client, certified, lib_reviewer, finance_user):
    certificate = Certificate.objects.get(request=certified)
    for user in (lib_reviewer, finance_user):
        client.force_login(user)
        assert client.get(url("registry:certificate_pdf", certificate.pk)).status_code == 302  # the sign-in page
        assert client.get(url("staff:certificate_pdf", certificate.pk)).status_code == 404
    client.force_login(finance_user)
    assert client.get(url("finance:certificate_pdf", certificate.pk)).status_code == 404
    client.logout()
    assert client.get(url("registry:certificate_pdf", certificate.pk)).status_code == 302


# --- the request's page -----------------------------------------------------------------------------

def test_request_page_offices_table_shows_each_status(registry_client, clearance, approval, superuser):
    approvals_reject(approval_ids=[approval(clearance, "SCH").pk], acting_user=superuser,
                     reason="Project not submitted").raise_if_refused()
    approvals_waive(approval_ids=[approval(clearance, "SPT").pk], acting_user=superuser,
                    reason="Never used the facilities").raise_if_refused()
    body = registry_client.get(url("registry:core_clearancerequest_change", clearance.pk)).content.decode()
    inline = body[body.index("Offices"):]
    statuses = dict(re.findall(r'<span class="[^"]+" data-status="(\w+)">([^<]+)</span>', inline))
    assert statuses == {"approved": "Approved", "rejected": "Rejected", "waived": "Waived", "pending": "Pending"}
    assert not re.search(r'data-status="\w+">(FIN|LIB|SCH|SPT|GOWN|REG)<', inline)  # not the office again


def _detail_actions(client, obj):
    body = client.get(url("registry:core_clearancerequest_change", obj.pk)).content.decode()
    return (url("registry:core_clearancerequest_revoke", obj.pk) in body,
            url("registry:core_clearancerequest_issue_certificate", obj.pk) in body)


def test_revoke_and_issue_offered_only_where_they_apply(registry_client, offices, cycle, open_request,
                                                        complete_request, registry_user):
    waiting, done, revoked = cohort(3)
    waiting = open_request(waiting)
    done = complete_request(open_request(done))
    revoked = open_request(revoked)
    request_revoke(request=revoked, acting_user=registry_user, reason="Withdrew")
    assert _detail_actions(registry_client, waiting) == (True, False)
    assert _detail_actions(registry_client, done) == (True, True)
    assert _detail_actions(registry_client, revoked) == (False, False)
    certificate_issue(request=done, acting_user=registry_user)
    assert _detail_actions(registry_client, done) == (True, False)  # issued once


def test_revoke_and_issue_posted_by_hand_on_a_revoked_request_are_refused(registry_client, certified,
                                                                         registry_user):
    request_revoke(request=certified, acting_user=registry_user, reason="Fees found unpaid")
    before = certified.history.count()
    page = registry_client.get(url("registry:core_clearancerequest_revoke", certified.pk))
    assert page.status_code == 302
    assert any("already revoked" in m for m in messages_of(page))
    again = registry_client.post(url("registry:core_clearancerequest_revoke", certified.pk), {"reason": "Twice"})
    assert any("already revoked" in m for m in messages_of(again))
    issue = registry_client.post(url("registry:core_clearancerequest_issue_certificate", certified.pk))
    assert any("Only a completed clearance gets a certificate; this one is revoked" in m
               for m in messages_of(issue))
    certified.refresh_from_db()
    assert certified.revoked_reason == "Fees found unpaid" and certified.history.count() == before
    assert Certificate.objects.filter(request=certified).count() == 1


def test_detail_action_with_a_malformed_id_is_not_a_server_error(registry_client, clearance):
    response = registry_client.get("/registry/core/clearancerequest/not-a-number/change/")
    assert response.status_code in (302, 404)


# --- the requests list fits 1440 px -------------------------------------------------------------------

def test_requests_list_columns_fit_a_1440_screen(registry_client, clearance, complete_request):
    from clearance_admin.registry import ClearanceRequestAdmin
    assert ClearanceRequestAdmin.list_display == ["student_column", "cycle", "status_label", "progress", "dates",
                                                  "certificate_state"]
    assert not ClearanceRequestAdmin.actions_row  # a column of row menus was what pushed it off
    complete_request(clearance)
    body = registry_client.get(url(REQUESTS)).content.decode()
    assert clearance.student.programme.name in body  # under the name, not a column of its own
    assert "To issue" in body  # completed, no certificate yet


# --- open for a cohort: preview, then confirm --------------------------------------------------------

def _preview_numbers(body):
    return {k: int(v) for k, v in re.findall(r'data-preview="([\w-]+)">(\d+)<', body)}


def test_open_for_cohort_previews_then_confirm_does_what_the_preview_said(
        registry_client, offices, cycle, open_request, registry_user):
    students = cohort(5)
    open_request(students[0])
    for s in students[1:3]:
        request_revoke(request=open_request(s), acting_user=registry_user, reason="Withdrew")
    data = {"cycle": cycle.pk, "graduation_year": "2026"}
    page = registry_client.post(url(OPEN_COHORT), data)
    assert page.status_code == 200
    body = page.content.decode()
    assert _preview_numbers(body) == {"students": 5, "new": 2, "after-revoked": 2, "already-open": 1, "to-open": 4}
    assert "they <strong>get a new request</strong> too" in body
    assert "Open clearance for 4 students" in body and 'name="confirm"' in body
    assert ClearanceRequest.objects.filter(cycle=cycle).exclude(status=R.REVOKED).count() == 1  # nothing yet

    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))
    assert hidden["confirm"] == "1" and hidden["cycle"] == str(cycle.pk) and hidden["graduation_year"] == "2026"
    done = registry_client.post(url(OPEN_COHORT), hidden)
    assert done.status_code == 302
    text = messages_of(done)
    assert any("for 4 students" in m for m in text), text
    assert any(m.startswith("2 of them had a revoked request") for m in text), text
    assert any(m.startswith("1 student already had a request") for m in text), text
    assert ClearanceRequest.objects.filter(cycle=cycle).exclude(status=R.REVOKED).count() == 5


def test_open_for_cohort_confirm_reports_what_was_done_when_the_preview_went_stale(
        registry_client, offices, cycle, open_request):
    students = cohort(3)
    preview = registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": "2026"})
    assert _preview_numbers(preview.content.decode())["to-open"] == 3
    open_request(students[0])  # someone opened one meanwhile
    done = registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": "2026", "confirm": "1"})
    text = messages_of(done)
    assert any("for 2 students" in m for m in text), text
    assert any(m.startswith("1 student already had a request") for m in text), text
    assert ClearanceRequest.objects.filter(cycle=cycle).count() == 3


def test_open_for_cohort_preview_offers_no_confirm_when_everyone_has_one(registry_client, offices, cycle,
                                                                        open_request):
    open_request(cohort(1)[0])
    body = registry_client.post(url(OPEN_COHORT), {"cycle": cycle.pk, "graduation_year": "2026"}).content.decode()
    assert _preview_numbers(body)["to-open"] == 0
    assert not re.search(r"Open clearance for \d+ student", body)


def test_dashboard_kpis_link_to_the_filtered_list_behind_each_number(
        registry_client, offices, cycle, open_request, complete_request, superuser):
    import html
    import json
    done, held, waiting = cohort(3)
    complete_request(open_request(done))
    on_hold = open_request(held)
    approvals_reject(approval_ids=[on_hold.approvals.get(department__code="LIB").pk], acting_user=superuser,
                     reason="Book not returned").raise_if_refused()
    late = open_request(waiting)
    late.approvals.filter(department__code="SPT").update(waiting_since=timezone.now() - datetime.timedelta(days=30))
    body = registry_client.get(url("registry:index")).content.decode()
    cards = dict(re.findall(r'<a href="([^"]+)"[^>]*>(?:(?!</a>).)*?data-kpi-link="([\w-]+)"', body, re.S))
    links = {key: html.unescape(href) for href, key in cards.items()}
    assert links["completed"] == f"{url(REQUESTS)}?cycle__id__exact={cycle.pk}&status__exact=completed"
    assert links["on-hold"].endswith("status__exact=on_hold")
    values = dict(re.findall(r'data-kpi-link="([\w-]+)" class="[^"]*">(\d+)<', body))
    assert values == {"completed": "1", "on-hold": "1", "pending": "1", "overdue": "1"}
    # each link's list holds exactly the students the number counts
    for key, expected in (("completed", done), ("on-hold", held), ("pending", waiting), ("overdue", waiting)):
        page = registry_client.get(links[key]).content.decode()
        shown = {s.registration_number for s in (done, held, waiting) if s.registration_number in page}
        assert shown == {expected.registration_number}, key
    # the charts' data sits in data attributes of unfold's canvases (no inline script under the CSP)
    charts = [json.loads(html.unescape(v)) for v in re.findall(r'<canvas class="chart"[^>]*data-value="([^"]+)"', body)]
    assert len(charts) == 3
    assert sum(charts[0]["datasets"][0]["data"]) == 1  # one completion in the cycle
    assert charts[1]["labels"] == ["SCE"] and [d["data"] for d in charts[1]["datasets"]] == [[1], [1], [1]]
    assert "<script>" not in body.split("</head>")[-1]


def test_dashboard_runs_as_many_queries_for_many_requests_as_for_few(
        registry_client, offices, cycle, registry_user, django_assert_max_num_queries):
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[cohort(1)[0].pk])
    registry_client.get(url("registry:index"))
    with CaptureQueriesContext(connection) as few:
        registry_client.get(url("registry:index"))
    others = cohort(30, school=factories.SchoolFactory(code="SPA"))
    requests_open_for_cohort(cycle=cycle, acting_user=registry_user, student_ids=[s.pk for s in others])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert registry_client.get(url("registry:index")).status_code == 200
