"""First logins and forgotten passwords over HTTP: the same answer whoever exists, links that work
once, a limit per address, the registry's invite action, and each site's sign-in page pointing the
way."""
from __future__ import annotations

import re

import pytest
from django.contrib.admin import helpers
from django.core import mail

from core import permissions
from core.models import Student, User
from tests import factories
from tests.conftest import _with_role

LINK = re.compile(r"http://[^/\s]+(/accounts/(?:reset|welcome)/[^/\s]+/[^/\s]+/)")


def _link(message) -> str:
    return LINK.search(message.body).group(1)


def test_a_forgotten_password_is_reset_by_email_end_to_end(client, registry_user):
    registry_user.set_password("old-password-1")
    registry_user.save()
    page = client.get("/accounts/password-reset/")
    assert page.status_code == 200 and b'id="reset-form"' in page.content
    sent = client.post("/accounts/password-reset/", {"email": "Registry@Clearance.test"})
    assert sent.status_code == 302 and sent["Location"] == "/accounts/password-reset/sent/"
    (message,) = mail.outbox
    assert message.to == ["registry@clearance.test"]
    opened = client.get(_link(message), follow=True)
    assert b'id="set-password-form"' in opened.content
    done = client.post(opened.redirect_chain[-1][0], {"new_password1": "Brand-new-pass-7",
                                                      "new_password2": "Brand-new-pass-7"})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    assert client.login(username="registry@clearance.test", password="Brand-new-pass-7")
    client.logout()
    again = client.get(_link(message), follow=True)              # once only
    assert b'id="link-invalid"' in again.content


def test_asking_for_an_address_nobody_has_looks_the_same(client, registry_user):
    registry_user.set_password("old-password-1")
    registry_user.save()
    known = client.post("/accounts/password-reset/", {"email": "registry@clearance.test"}, follow=True)
    unknown = client.post("/accounts/password-reset/", {"email": "nobody@clearance.test"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain == [("/accounts/password-reset/sent/", 302)]
    said = [re.search(r'<p class="text-sm" id="link-sent">(.*?)</p>', r.content.decode(), re.S).group(1)
            for r in (known, unknown)]
    assert said[0] == said[1]
    assert len(mail.outbox) == 1


def test_a_sign_up_answers_the_same_whether_it_matched(client, db, django_capture_on_commit_callbacks):
    factories.StudentFactory(registration_number="SED/ECD/0007/2021", email="achieng@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        matched = client.post("/accounts/sign-up/", {"registration_number": "SED/ECD/0007/2021",
                                                     "email": "achieng@example.com"}, follow=True)
        other = client.post("/accounts/sign-up/", {"registration_number": "SED/ECD/0007/2021",
                                                   "email": "intruder@example.com"}, follow=True)
    assert matched.redirect_chain == other.redirect_chain == [("/accounts/sign-up/sent/", 302)]
    assert b'id="link-sent"' in matched.content and b'id="link-sent"' in other.content
    assert [m.to for m in mail.outbox] == [["achieng@example.com"]]
    opened = client.get(_link(mail.outbox[0]), follow=True)
    done = client.post(opened.redirect_chain[-1][0], {"new_password1": "Graduand-2026!",
                                                      "new_password2": "Graduand-2026!"})
    assert done["Location"] == "/accounts/welcome/done/"
    assert client.login(username="achieng@example.com", password="Graduand-2026!")
    assert client.get("/student/").status_code == 200


def test_junk_links_and_forms_are_answered_not_crashed(client, db):
    for url in ("/accounts/welcome/xx/yy/", "/accounts/reset/MQ/zz-zz/", "/accounts/welcome/%FF%FE/1-1/",
                "/accounts/reset/" + "A" * 300 + "/x/"):
        response = client.get(url, follow=True)
        assert response.status_code == 200 and b'id="link-invalid"' in response.content
    bad = client.post("/accounts/sign-up/", {"registration_number": "x" * 500, "email": "not-an-address"})
    assert bad.status_code == 200 and b"errornote" in bad.content or b"error" in bad.content
    assert client.post("/accounts/password-reset/", {"email": "\x00"}).status_code == 200


def test_each_asking_page_is_limited_per_address(client, db, settings):
    from django.core.cache import cache
    cache.clear()                               # the counts of other tests' requests
    settings.ACCOUNT_RATE_LIMIT = 2
    for _ in range(2):
        assert client.post("/accounts/sign-up/", {"registration_number": "A", "email": "a@b.co"}).status_code == 302
    limited = client.post("/accounts/sign-up/", {"registration_number": "A", "email": "a@b.co"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    # another page has its own count
    assert client.post("/accounts/password-reset/", {"email": "a@b.co"}).status_code == 302


def test_the_sign_in_pages_point_the_way(client, db):
    student_login = client.get("/student/login/", follow=True).content.decode()
    assert 'href="/accounts/sign-up/"' in student_login and 'href="/accounts/password-reset/"' in student_login
    staff_login = client.get("/staff/login/", follow=True).content.decode()
    assert 'href="/accounts/password-reset/"' in staff_login


def test_the_registry_invites_the_selected_students(client, registry_user, django_capture_on_commit_callbacks):
    invited = factories.StudentFactory(email="one@example.com")
    without = factories.StudentFactory(email="")
    client.force_login(registry_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/registry/core/student/", {
            "action": "invite_selected", helpers.ACTION_CHECKBOX_NAME: [invited.pk, without.pk]}, follow=True)
    text = response.content.decode()
    assert "Sent an invitation to 1 student" in text and "no email address in the student records" in text
    assert [m.to for m in mail.outbox] == [["one@example.com"]]
    assert Student.objects.get(pk=invited.pk).user.email == "one@example.com"
    page = client.get("/registry/core/student/").content.decode()
    assert "invited" in page


@pytest.mark.parametrize("role", [permissions.FINANCE, permissions.STAFF])
def test_no_other_role_can_invite(client, make_user, role):
    student = factories.StudentFactory(email="two@example.com")
    user = make_user(role)
    client.force_login(user)
    client.post("/registry/core/student/", {"action": "invite_selected",
                                            helpers.ACTION_CHECKBOX_NAME: [student.pk]})
    assert not mail.outbox and Student.objects.get(pk=student.pk).user is None


def test_a_student_changes_their_password(client, db):
    student = factories.StudentFactory(with_user=True)
    _with_role(student.user, permissions.STUDENT)
    student.user.set_password("first-pass-123")
    student.user.save()
    client.force_login(student.user)
    page = client.get("/student/password_change/")
    assert page.status_code == 200
    done = client.post("/student/password_change/", {"old_password": "first-pass-123",
                                                     "new_password1": "Second-pass-456",
                                                     "new_password2": "Second-pass-456"})
    assert done.status_code == 302
    assert User.objects.get(pk=student.user.pk).check_password("Second-pass-456")
