"""A student, on a phone, opens a notification: it is read whole and marked read."""
from __future__ import annotations

from core.models import Notification, User

from .conftest import login


def test_a_student_opens_a_notification_and_it_is_marked_read(page, tmp_path):
    user = User.objects.get(email="student@clearance.test")
    note = Notification.objects.create(user=user, kind=Notification.Kind.REJECTED, title="LIB: rejected",
                                       message="Library rejected your clearance. Reason: 2 books not returned: "
                                               "'Introduction to Algorithms', 'Clean Code'", link="/student/")
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "student", "student@clearance.test")
    page.goto("/student/core/notification/")
    page.wait_for_load_state("networkidle")
    page.click("a:has-text('LIB: rejected')")
    page.wait_for_load_state("networkidle")
    assert "Clean Code" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "notification.png"), full_page=True)
    note.refresh_from_db()
    assert note.read_at is not None
