"""The gown clerk's day in a browser: scan a cleared student's registration number, issue a gown,
then scan the gown's code, take it back and refund the deposit."""
from __future__ import annotations

from core.models import ClearanceRequest, GownIssuance, Student, User

from .conftest import login


def test_gown_clerk_issues_a_gown_by_the_scan_box_and_takes_it_back(page):
    student = (Student.objects.filter(clearance_requests__status=ClearanceRequest.Status.COMPLETED)
               .exclude(pk__in=GownIssuance.objects.filter(returned_at__isnull=True).values("student_id"))
               .order_by("pk").first())
    assert student is not None, "the demo world has a completed student without a gown out"
    clerk = User.objects.get(email="gown@clearance.test")

    login(page, "staff", "gown@clearance.test")
    page.click("nav a:has-text('Issue or take back'), #nav-sidebar-apps a:has-text('Issue or take back')")
    page.wait_for_load_state("networkidle")
    page.fill("#id_code", student.registration_number.lower())       # as a scanner or a hurried clerk types it
    page.press("#id_code", "Enter")
    page.wait_for_load_state("networkidle")
    assert f"Issue a gown to {student.registration_number}" in page.inner_text("#gown-page h1")
    page.fill("input[name=gown_code]", "brw-001")
    page.select_option("select[name=size]", "L")
    page.click("#gown-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert f"Gown BRW-001 (Large) issued to {student.registration_number}" in page.inner_text("body")
    gown = GownIssuance.objects.get(gown_code="BRW-001", returned_at__isnull=True)
    assert (gown.student, gown.issued_by) == (student, clerk)

    page.fill("#id_code", "BRW-001")
    page.press("#id_code", "Enter")
    page.wait_for_load_state("networkidle")
    assert "Take back gown BRW-001" in page.inner_text("#gown-page h1")
    page.click("#gown-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Refund the deposit of gown BRW-001" in page.inner_text("#gown-page h1")
    page.click("#gown-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert f"KES 2,000.00 refunded to {student.registration_number}" in page.inner_text("body")
    gown.refresh_from_db()
    assert gown.returned_at is not None and gown.deposit_status == GownIssuance.DepositStatus.REFUNDED
    assert {h.history_user for h in gown.history.all()} == {clerk}
