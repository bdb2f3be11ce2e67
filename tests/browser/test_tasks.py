"""One real task in each site, as its demo user does it in Chromium."""
from __future__ import annotations

from django.utils import timezone

from core.models import ClearanceApproval, ClearanceRequest, Payment, Student

from .conftest import login


def _tick(page, ids):
    for pk in ids:
        page.check(f"input.action-select[value='{pk}']")


def _run_action(page, name):
    page.select_option("select[name=action]", name)
    page.click("button[name=index]")
    page.wait_for_load_state("networkidle")


def test_staff_bulk_approves_and_bulk_rejects_with_a_reason(page):
    pending = list(ClearanceApproval.objects.filter(department__code="LIB", status="pending")
                   .exclude(request__student__holds__department__code="LIB", request__student__holds__status="active")
                   .order_by("waiting_since").values_list("pk", flat=True)[:5])
    to_approve, to_reject = pending[:3], pending[3:5]
    login(page, "staff", "lib@clearance.test")
    page.goto("/staff/core/clearanceapproval/?status__exact=pending&all=")
    _tick(page, to_approve)
    _run_action(page, "approve_selected")
    assert "3 selected." in page.inner_text("body")          # it asks first, naming the students
    assert set(ClearanceApproval.objects.filter(pk__in=to_approve).values_list("status", flat=True)) == {"pending"}
    page.click("button[type=submit]:has-text('Approve 3')")
    page.wait_for_load_state("networkidle")
    assert "Approved 3" in page.inner_text("body")
    assert set(ClearanceApproval.objects.filter(pk__in=to_approve).values_list("status", flat=True)) == {"approved"}

    page.goto("/staff/core/clearanceapproval/?status__exact=pending&all=")
    _tick(page, to_reject)
    _run_action(page, "reject_selected")
    page.fill("textarea[name=reason]", "Library card not returned")
    page.click("button[type=submit]:has-text('Reject')")
    page.wait_for_load_state("networkidle")
    assert "Rejected 2" in page.inner_text("body")
    rejected = ClearanceApproval.objects.filter(pk__in=to_reject)
    assert {(a.status, a.reason) for a in rejected} == {("rejected", "Library card not returned")}


def test_finance_verifies_a_payment(page):
    payment = Payment.objects.filter(verified_at__isnull=True).order_by("pk").first()
    login(page, "finance", "finance@clearance.test")
    page.goto(f"/finance/core/payment/?q={payment.transaction_code}")
    _tick(page, [payment.pk])
    _run_action(page, "verify_selected")
    assert "Verified 1 payment" in page.inner_text("body")
    payment.refresh_from_db()
    assert payment.verified_by.email == "finance@clearance.test"


def test_registry_opens_clearance_for_a_cohort(page):
    cohort = timezone.localdate().year
    without = Student.objects.filter(expected_graduation_year=cohort).exclude(clearance_requests__status__in=[
        s for s in ClearanceRequest.Status.values if s != "revoked"]).count()
    assert without > 0
    login(page, "registry", "registry@clearance.test")
    page.goto("/registry/core/clearancerequest/open-for-cohort/")
    page.select_option("select[name=graduation_year]", str(cohort))
    page.click("button[type=submit]:has-text('Preview')")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("[data-preview=to-open]") == str(without)  # nothing created yet
    page.click("button[type=submit]:has-text('Open clearance for')")
    page.wait_for_load_state("networkidle")
    body = page.inner_text("body")
    assert f"for {without} student" in body, body[:500]
    assert not Student.objects.filter(expected_graduation_year=cohort).exclude(
        clearance_requests__status__in=[s for s in ClearanceRequest.Status.values if s != "revoked"]).exists()


def test_student_sees_why_they_are_not_cleared(page):
    login(page, "student", "student@clearance.test")
    body = page.inner_text("body")
    assert "Room key not returned (room B12)" in body
    assert "1,500" in body
    assert "HOS" in body or "Hostels" in body
