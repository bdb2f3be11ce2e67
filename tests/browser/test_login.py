"""Each site lets in its own role and refuses others with a message naming their sites."""
from .conftest import login


def test_staff_member_reaches_the_staff_dashboard(page):
    login(page, "staff", "lib@clearance.test")
    assert page.url.endswith("/staff/")
    assert page.get_by_text("Clearance queue").first.is_visible()


def test_student_at_staff_site_is_refused_with_their_site_named(page):
    login(page, "staff", "student@clearance.test")
    assert "/staff/login/" in page.url
    body = page.inner_text("body")
    assert "This site is for department staff" in body
    assert "/student/" in body
