"""Student logins: invitations from the registry and sign-ups with the registration number and the
email the records hold; one-time links that expire; nothing that tells who exists."""
from __future__ import annotations

import datetime
import re

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from core import permissions
from core.models import Student, User
from core.services.accounts import (account_link, account_link_send, account_link_tokens, student_sign_up,
                                    students_invite)
from tests import factories


@pytest.fixture
def graduand(db):
    return factories.StudentFactory(email="Wanjiru.K@Students.Example.ac.ke", first_name="Wanjiru",
                                    last_name="Kamau", registration_number="SCE/CS/0042/2022")


def test_an_invitation_makes_a_login_without_password_and_sends_the_link_after_commit(
        graduand, registry_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = students_invite(student_ids=[graduand.pk], acting_user=registry_user)
        assert not mail.outbox                         # nothing leaves before the transaction commits
    assert result.done == [graduand.pk] and len(callbacks) == 1
    graduand.refresh_from_db()
    user = graduand.user
    assert user.email == "wanjiru.k@students.example.ac.ke" and not user.has_usable_password()
    assert permissions.in_group(user, permissions.STUDENT) and not user.is_staff
    assert user.history.get().history_user == registry_user
    assert "invited by registry@clearance.test" in user.history.get().history_change_reason
    (message,) = mail.outbox
    assert message.to == [user.email] and "invited you" in message.body
    link = re.search(r"http\S+/accounts/welcome/\S+/", message.body).group(0)
    assert link.startswith("http://127.0.0.1:8000/accounts/welcome/") or "/accounts/welcome/" in link


def test_invitations_are_refused_row_by_row(registry_user, graduand):
    nobody = factories.StudentFactory(email="")
    taken = factories.StudentFactory(email="someone@example.com")
    factories.UserFactory(email="someone@example.com")
    active = factories.StudentFactory(with_user=True)
    active.user.set_password("already-has-one")
    active.user.save()
    result = students_invite(student_ids=[graduand.pk, nobody.pk, taken.pk, active.pk, 999_999],
                             acting_user=registry_user)
    assert result.done == [graduand.pk]
    reasons = {r.pk: r.reason for r in result.refused}
    assert reasons[nobody.pk] == "no email address in the student records"
    assert "belongs to another account" in reasons[taken.pk]
    assert "already has a login" in reasons[active.pk]
    assert result.unseen == [999_999]
    assert Student.objects.get(pk=taken.pk).user is None


def test_only_the_registry_invites(graduand, make_user):
    for role in (permissions.FINANCE, permissions.STAFF, permissions.STUDENT):
        with pytest.raises(ValidationError):
            students_invite(student_ids=[graduand.pk], acting_user=make_user(role))
    assert Student.objects.get(pk=graduand.pk).user is None


def test_a_sign_up_with_the_records_email_sends_the_link_and_anything_else_sends_nothing(
        graduand, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for reg, email in [("SCE/CS/0042/2022", "other@example.com"), ("SCE/CS/9999/2022", graduand.email),
                           ("", ""), ("SCE/CS/0042/2022", "")]:
            assert student_sign_up(registration_number=reg, email=email) is None
    assert not mail.outbox and not User.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        student_sign_up(registration_number=" sce/cs/0042/2022 ", email="WANJIRU.K@students.example.ac.ke ")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["wanjiru.k@students.example.ac.ke"]
    # a student with a password already: nothing sent, and the same silence
    user = Student.objects.get(pk=graduand.pk).user
    user.set_password("chosen-already-1")
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        student_sign_up(registration_number="SCE/CS/0042/2022", email=graduand.email)
    assert len(mail.outbox) == 1


def test_the_link_works_once_and_expires(graduand, registry_user, settings):
    students_invite(student_ids=[graduand.pk], acting_user=registry_user)
    user = Student.objects.get(pk=graduand.pk).user
    token = account_link(user).rstrip("/").rsplit("/", 1)[1]
    assert account_link_tokens.check_token(user, token)
    with time_machine.travel(datetime.datetime.now() + datetime.timedelta(days=settings.ACCOUNT_LINK_DAYS, hours=1)):
        assert not account_link_tokens.check_token(user, token)
    user.set_password("my-new-password-9")
    user.save()
    assert not account_link_tokens.check_token(User.objects.get(pk=user.pk), token)       # used: gone
    assert account_link_send(user_id=user.pk, kind="invitation") is False                  # nothing to send


def test_a_forged_token_is_refused(graduand, registry_user):
    students_invite(student_ids=[graduand.pk], acting_user=registry_user)
    user = Student.objects.get(pk=graduand.pk).user
    for token in ("", "abc", "zz-zz", "1-" + "0" * 20):
        assert not account_link_tokens.check_token(user, token)


def test_an_invited_login_is_a_student_login(graduand, registry_user):
    students_invite(student_ids=[graduand.pk], acting_user=registry_user)
    user = User.objects.get(email=graduand.email.lower())
    assert permissions.has_role(user, permissions.STUDENT)


def _invite_queries(registry_user, n):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    students = [factories.StudentFactory(email=f"grad{n}.{i}@students.example.ac.ke") for i in range(n)]
    with CaptureQueriesContext(connection) as queries:
        result = students_invite(student_ids=[s.pk for s in students], acting_user=registry_user)
    assert sorted(result.done) == sorted(s.pk for s in students)
    return len(queries)


def test_inviting_many_costs_the_queries_of_inviting_a_few(registry_user):
    # past bulk_update_tracked's CASE limit (32 distinct values) every time, so each takes the same path
    _invite_queries(registry_user, 40)                     # and what is looked up once per process
    assert _invite_queries(registry_user, 50) == _invite_queries(registry_user, 120)
    assert User.objects.filter(email__startswith="grad120.").count() == 120
    assert all(permissions.in_group(u, permissions.STUDENT) for u in User.objects.filter(email__startswith="grad120."))


def test_two_selected_students_with_one_address_get_one_login(registry_user):
    first = factories.StudentFactory(email="twins@example.com")
    second = factories.StudentFactory(email="TWINS@example.com ")
    result = students_invite(student_ids=[first.pk, second.pk], acting_user=registry_user)
    assert result.done == [first.pk]
    assert "belongs to another account" in {r.pk: r.reason for r in result.refused}[second.pk]
    assert User.objects.filter(email="twins@example.com").count() == 1


def test_an_address_taken_meanwhile_refuses_only_its_row(registry_user, graduand, monkeypatch):
    import core.services.accounts as accounts
    other = factories.StudentFactory(email="other@example.com")
    real = accounts._login_to_make

    def another_process_first(student, taken):
        factories.UserFactory(email="other@example.com")        # committed elsewhere after our look-up
        monkeypatch.setattr(accounts, "_login_to_make", real)
        return real(student, taken)
    monkeypatch.setattr(accounts, "_login_to_make", another_process_first)
    result = students_invite(student_ids=[graduand.pk, other.pk], acting_user=registry_user)
    assert result.done == [graduand.pk]
    assert "belongs to another account" in {r.pk: r.reason for r in result.refused}[other.pk]
    graduand.refresh_from_db()
    assert graduand.user is not None and Student.objects.get(pk=other.pk).user is None


def test_batches_share_what_is_taken_and_cost_queries_per_batch(registry_user, monkeypatch):
    """students_invite works INVITE_CHUNK students at a time (memory flat at 100,000): an address
    given in one batch is taken for the next, and the queries grow with batches, not students."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.services import accounts
    monkeypatch.setattr(accounts, "INVITE_CHUNK", 2)
    first, other, second = (factories.StudentFactory(email=e) for e in
                            ("twins@example.com", "x@example.com", "TWINS@example.com"))
    result = students_invite(student_ids=[first.pk, other.pk, second.pk], acting_user=registry_user)
    assert result.done == [first.pk, other.pk]          # the twin is in the second batch
    assert "belongs to another account" in {r.pk: r.reason for r in result.refused}[second.pk]

    def queries(n):
        students = [factories.StudentFactory(email=f"batch{n}.{i}@students.example.ac.ke") for i in range(n)]
        monkeypatch.setattr(accounts, "INVITE_CHUNK", n // 2)         # two batches each time
        with CaptureQueriesContext(connection) as ctx:
            done = students_invite(student_ids=[s.pk for s in students], acting_user=registry_user).done
        assert len(done) == n
        return len(ctx)
    assert queries(80) == queries(160)
