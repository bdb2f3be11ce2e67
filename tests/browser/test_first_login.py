"""A new student's first login in Chromium, on a phone: the registry's invitation email, its link,
a password chosen, signing in, and their clearance on the screen. Then the link is spent."""
from __future__ import annotations

import re

from django.core import mail

from core.models import ClearanceRequest, Student, User
from core.services.accounts import students_invite


def test_an_invited_student_sets_a_password_signs_in_and_sees_their_clearance(page, tmp_path):
    student = (Student.objects.filter(user=None, clearance_requests__status=ClearanceRequest.Status.IN_PROGRESS)
               .exclude(email="").order_by("pk").first())
    students_invite(student_ids=[student.pk], acting_user=User.objects.get(email="registry@clearance.test"))
    (message,) = [m for m in mail.outbox if m.to == [student.email.lower()]]
    path = re.search(r"http://[^/\s]+(/accounts/welcome/\S+/)", message.body).group(1)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(tmp_path / "welcome.png"), full_page=True)
    assert page.locator("#set-password-form").is_visible()
    page.fill("input[name=new_password1]", "Graduation-Day-2026")
    page.fill("input[name=new_password2]", "Graduation-Day-2026")
    page.click("#set-password-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#password-set").is_visible()

    page.click("#password-set a:has-text('/student/')")
    page.wait_for_load_state("networkidle")
    page.fill("input[name=username]", student.email)
    page.fill("input[name=password]", "Graduation-Day-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/student/")
    body = page.inner_text("body")
    assert student.first_name in body and "in progress" in body.lower()
    page.screenshot(path=str(tmp_path / "first-login.png"), full_page=True)

    page.goto(path)                                 # the link worked once
    page.wait_for_load_state("networkidle")
    assert page.locator("#link-invalid").is_visible()
