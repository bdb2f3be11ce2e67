"""A workflow record's history in /admin/, in a browser: no script error (any page error or console
error fails), the changes read old → new with the IP and the reason, and a version page where
revert is off is read-only."""
from __future__ import annotations

from core.history import audit_context
from core.models import ClearanceApproval, User
from core.services.approvals import approval_reject

from .conftest import login

REASON = ("Two books not returned: 'Introduction to Algorithms' and 'Clean Code', both due back on 1 March; "
          "bring them to the circulation desk")


def test_an_approval_history_page_has_no_script_errors(page, tmp_path):
    item = ClearanceApproval.objects.filter(status=ClearanceApproval.Status.PENDING,
                                            department__code="LIB").order_by("pk").first()
    with audit_context(ip="203.0.113.7"):
        approval_reject(approval=item, acting_user=User.objects.get(email="lib@clearance.test"), reason=REASON)
    errors = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    login(page, "admin", "admin@clearance.test")

    page.goto(f"/admin/core/clearanceapproval/{item.pk}/history/")
    page.wait_for_load_state("networkidle")
    newest = page.locator("#change-history tbody tr").first
    text = newest.inner_text()
    assert "Pending" in newest.locator("[data-field=status]").inner_text()
    assert "Rejected" in newest.locator("[data-field=status]").inner_text()
    assert REASON in text and "203.0.113.7" in text
    page.screenshot(path=str(tmp_path / "history-1440.png"), full_page=True)

    newest.locator("a").first.click()                        # that version of the record
    page.wait_for_load_state("networkidle")
    assert page.locator("#history-read-only").is_visible()
    assert page.locator("#content-main form textarea, #content-main form select, "
                        "#content-main form input[type=text]").count() == 0
    history_url = f"/admin/core/clearanceapproval/{item.pk}/history/"
    page.locator(f"a[href='{history_url}']", has_text="History").first.click()   # a link back, not a dead toggle
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/admin/core/clearanceapproval/{item.pk}/history/")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
