"""Notifications: each is its reader's own."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from core.models import Notification
from core.services.notifications import notification_mark_read

pytestmark = pytest.mark.django_db


def test_marking_someone_elses_notification_read_is_refused(student, make_user):
    theirs = Notification.objects.create(user=make_user(), title="Your clearance is open")
    with pytest.raises(PermissionDenied, match="not yours"):
        notification_mark_read(notification=theirs, acting_user=student.user)
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_marking_ones_own_notification_read(student):
    mine = Notification.objects.create(user=student.user, title="Your clearance is open")
    notification_mark_read(notification=mine, acting_user=student.user)
    stored = Notification.objects.get(pk=mine.pk)
    assert stored.read_at is not None and stored.history.first().history_user == student.user


def test_marking_all_read_marks_only_ones_own_unread_ones_with_history(student, make_user, django_assert_max_num_queries):
    from core.services.notifications import notifications_mark_all_read
    mine = [Notification.objects.create(user=student.user, title=f"N{i}") for i in range(3)]
    theirs = Notification.objects.create(user=make_user(), title="Theirs")
    with django_assert_max_num_queries(6):              # one UPDATE and one history INSERT, whatever the count
        assert notifications_mark_all_read(acting_user=student.user) == 3
    assert not Notification.objects.filter(pk__in=[n.pk for n in mine], read_at__isnull=True).exists()
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert Notification.objects.get(pk=mine[0].pk).history.first().history_change_reason == "Marked all read"
    assert notifications_mark_all_read(acting_user=student.user) == 0


# --- told by email too ------------------------------------------------------------------------

import datetime  # noqa: E402

from django.core import mail  # noqa: E402

from core.services.approvals import approval_reject, approval_reopen  # noqa: E402
from core.services.certificates import certificate_issue  # noqa: E402
from core.services.holds import hold_place, hold_release  # noqa: E402
from core.services.notifications import notification_email_send, notifications_email_set  # noqa: E402
from core.models import Hold  # noqa: E402
from tests.conftest import approval_of  # noqa: E402


def _emails_to(user):
    return [m for m in mail.outbox if m.to == [user.email]]


def test_a_rejection_is_notified_and_emailed_once_after_commit(clearance, student, lib_reviewer,
                                                               django_capture_on_commit_callbacks):
    lib = approval_of(clearance, "LIB")
    with django_capture_on_commit_callbacks(execute=True):
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="2 books not returned (KES 1,500)")
        assert not _emails_to(student.user)                 # nothing before the commit
    n = Notification.objects.get(user=student.user, kind=Notification.Kind.REJECTED)
    (message,) = _emails_to(student.user)
    assert "2 books not returned (KES 1,500)" in message.body and message.subject == f"Clearance: {n.title}"
    assert message.alternatives and "2 books not returned" in message.alternatives[0][0]
    n.refresh_from_db()
    assert n.emailed_at is not None
    # the task delivered again (the broker retried it): nothing sent twice
    assert "already sent" in notification_email_send(n.pk)
    assert len(_emails_to(student.user)) == 1


def test_holds_reopening_completion_and_the_certificate_are_each_told(
        clearance, student, offices, lib_reviewer, complete_request, registry_user, superuser,
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        hold_place(department=offices["SPT"], student=student, reason="Team kit not returned", amount=800,
                   acting_user=superuser)
    with django_capture_on_commit_callbacks(execute=True):
        hold_release(hold=Hold.objects.get(student=student, department__code="SPT"), acting_user=superuser,
                     reason="kit returned")
    with django_capture_on_commit_callbacks(execute=True):
        lib = approval_of(clearance, "LIB")
        approval_reject(approval=lib, acting_user=lib_reviewer, reason="book")
    with django_capture_on_commit_callbacks(execute=True):
        approval_reopen(approval=approval_of(clearance, "LIB"), acting_user=lib_reviewer, note="checked again")
    with django_capture_on_commit_callbacks(execute=True):
        complete_request(clearance)
    with django_capture_on_commit_callbacks(execute=True):
        clearance.refresh_from_db()
        certificate = certificate_issue(request=clearance, acting_user=registry_user)
    kinds = list(Notification.objects.filter(user=student.user).order_by("pk").values_list("kind", "title"))
    assert ("hold", "SPT placed a hold") in kinds and ("hold", "SPT released a hold") in kinds
    assert ("reopened", "LIB: re-opened") in kinds
    assert ("completed", "Your clearance is complete") in kinds
    cert = Notification.objects.get(user=student.user, kind="certificate")
    assert cert.link == f"/student/certificates/{certificate.pk}/pdf/"
    subjects = [m.subject for m in _emails_to(student.user)]
    assert "Clearance: Your clearance certificate is ready" in subjects
    assert len(subjects) == Notification.objects.filter(user=student.user).count()    # one email per event


def test_a_student_who_turned_email_off_is_only_notified_in_clearance(clearance, student, lib_reviewer,
                                                                     django_capture_on_commit_callbacks):
    notifications_email_set(user=student.user, on=False)
    with django_capture_on_commit_callbacks(execute=True):
        approval_reject(approval=approval_of(clearance, "LIB"), acting_user=lib_reviewer, reason="book")
    assert Notification.objects.filter(user=student.user, kind="rejected").exists()
    assert not _emails_to(student.user)
    assert student.user.history.first().history_change_reason == "email notifications off"


def test_a_failing_send_is_kept_on_the_notification_and_tried_again_later(student, settings, monkeypatch):
    from django_q.models import Schedule
    n = Notification.objects.create(user=student.user, title="Hello", message="m")

    def bounce(self, *a, **k):
        raise OSError("550 mailbox unavailable")
    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", bounce)
    now = datetime.datetime(2026, 12, 4, 8, 0, tzinfo=datetime.timezone.utc)
    said = notification_email_send(n.pk, now=now)
    n.refresh_from_db()
    assert "trying again in 2 minutes" in said
    assert (n.email_attempts, n.emailed_at, n.email_claimed_at) == (1, None, None) and "550" in n.email_error
    retry = Schedule.objects.get(name=f"Email of notification #{n.pk} (again)")
    assert retry.next_run == now + datetime.timedelta(minutes=2) and retry.func == "core.tasks.notification_email_task"
    monkeypatch.undo()
    notification_email_send(n.pk)
    n.refresh_from_db()
    assert n.emailed_at is not None and n.email_error == "" and len(mail.outbox) == 1


def test_after_the_last_attempt_it_gives_up(student, settings, monkeypatch):
    settings.NOTIFICATION_EMAIL_ATTEMPTS = 1
    n = Notification.objects.create(user=student.user, title="Hello")
    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send",
                        lambda self, *a, **k: (_ for _ in ()).throw(OSError("down")))
    assert "given up" in notification_email_send(n.pk)
