"""A student on a 390 px phone: every office a card that fits the screen, nothing cut, and a
re-submission with the return slip the office asked for. The same page still reads at 1440 px."""
from __future__ import annotations

from core.models import ClearanceApproval, Notification, Student, User
from core.services.approvals import approval_reject

from .conftest import login

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
LONG_REASON = ("Two books not returned: 'Introduction to Algorithms' and 'Structure and Interpretation of "
               "Computer Programs'; bring them, or the signed return slip, to the circulation desk")

# text elements of the cards and notifications whose content is wider than their box (cut or scrolled)
CLIPPED = """() => [...document.querySelectorAll(
        '.office-card h3, .office-card dt, .office-card dd, .office-card label.field-label, .office-card .hint, '
        + '.office-card button, .notice a, .notice p, .notice span')]
    .filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
    .map(el => el.className + ': ' + el.textContent.trim().slice(0, 60))"""
OUTSIDE = """() => [...document.querySelectorAll('.office-card, .notice')]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5).map(el => el.id)"""


def _rejected_item_of_the_demo_student() -> ClearanceApproval:
    student = Student.objects.get(user__email="student@clearance.test")
    item = (ClearanceApproval.objects.filter(request__student=student, department__code="LIB")
            .select_related("department").get())
    if item.status != ClearanceApproval.Status.REJECTED:
        if item.status != ClearanceApproval.Status.PENDING:
            ClearanceApproval.objects.filter(pk=item.pk).update(status=ClearanceApproval.Status.PENDING,
                                                                decided_at=None, decided_by=None)
            item.refresh_from_db()
        approval_reject(approval=item, acting_user=User.objects.get(email="lib@clearance.test"), reason=LONG_REASON)
    item.refresh_from_db()
    return item


def _fits(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("window.innerWidth")
    assert page.evaluate(OUTSIDE) == []
    assert page.evaluate(CLIPPED) == []


def test_the_students_page_fits_a_phone_and_resubmits_with_a_file(page, tmp_path):
    item = _rejected_item_of_the_demo_student()
    Notification.objects.create(user=item.request.student.user, kind=Notification.Kind.REJECTED, title="LIB: rejected",
                                message=f"Library rejected your clearance. Reason: {LONG_REASON}", link="/student/")
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "student", "student@clearance.test")
    page.goto("/student/")
    page.wait_for_load_state("networkidle")

    card = page.locator(f"#item-{item.pk}")
    assert card.is_visible()
    assert "structure and interpretation of computer programs" in card.inner_text().lower()
    assert "what to do" in card.inner_text().lower() and "where to go" in card.inner_text().lower()
    assert page.locator("input[type=checkbox]").count() == 0                 # no admin clutter
    assert LONG_REASON in page.inner_text("#notifications")                  # the message whole
    _fits(page)
    page.screenshot(path=str(tmp_path / "student-390.png"), full_page=True)

    card.locator("textarea[name=response]").fill("Returned both books; the signed slip is attached")
    card.locator("input[type=file]").set_input_files(
        {"name": "return-slip.pdf", "mimeType": "application/pdf", "buffer": PDF})
    card.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")

    assert "Re-submitted to Library with return-slip.pdf" in page.inner_text("body")
    item.refresh_from_db()
    assert item.status == ClearanceApproval.Status.PENDING
    assert item.response_file_name == "return-slip.pdf"
    with page.expect_download() as download:
        page.click(f"#item-{item.pk} a.response-file")
    assert download.value.suggested_filename == "return-slip.pdf"
    assert open(download.value.path(), "rb").read() == PDF
    _fits(page)
    assert errors == []


def test_the_students_page_still_reads_at_1440(page, tmp_path):
    _rejected_item_of_the_demo_student()
    page.set_viewport_size({"width": 1440, "height": 900})
    login(page, "student", "student@clearance.test")
    page.goto("/student/")
    page.wait_for_load_state("networkidle")
    _fits(page)
    tops = page.evaluate("() => [...document.querySelectorAll('.office-card')].map(c => c.getBoundingClientRect().top)")
    assert len(tops) >= 3 and tops[0] == tops[1]            # cards side by side, not one long column
    page.screenshot(path=str(tmp_path / "student-1440.png"), full_page=True)
