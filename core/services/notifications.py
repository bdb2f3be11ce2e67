"""Notifications: a row the person reads in Clearance and, unless they turned it off, an email.

Both follow the transaction that made them: a rolled-back decision tells nobody anything. Each
email is sent by a django-q2 task (`notification_email_task`), at most once: the task claims the
notification (`email_claimed_at`) before it sends, so a task the broker delivers again finds the
claim and sends nothing. A failure (a bounce, SMTP down) is kept on the notification
(`email_error`, `email_attempts`) and tried again later, waiting 2, 4, 8 … minutes, up to
NOTIFICATION_EMAIL_ATTEMPTS times; nothing else is affected."""
from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from ..models import Notification

log = logging.getLogger(__name__)
EMAIL_TASK = "core.tasks.notification_email_task"
EMAILS_PER_TASK = 200


def notifications_send(items: list[dict]) -> None:
    """Queue notifications (dicts of Notification fields) to be written once the surrounding
    transaction commits, each then emailed to its person (unless they turned email off)."""
    items = [i for i in items if i.get("user_id") or i.get("user")]
    if not items:
        return

    def write():
        made = Notification.objects.bulk_create([Notification(**i) for i in items], batch_size=1000)
        _queue_emails(made)

    transaction.on_commit(write)


def _queue_emails(notifications) -> None:
    from django.contrib.auth import get_user_model
    from django_q.tasks import async_task

    user_ids = {n.user_id for n in notifications}
    wanted = set(get_user_model().objects.filter(pk__in=user_ids, is_active=True, email_notifications=True)
                 .exclude(email="").values_list("pk", flat=True))
    ids = [n.pk for n in notifications if n.user_id in wanted and n.pk is not None]
    for start in range(0, len(ids), EMAILS_PER_TASK):       # a bulk decision is a few tasks, not one per row
        chunk = ids[start:start + EMAILS_PER_TASK]
        async_task(EMAIL_TASK, chunk, task_name=f"emails of {len(chunk)} notification(s) from #{chunk[0]}")


def notification_email_send(notification_id: int, *, now: datetime.datetime | None = None) -> str:
    """Send one notification's email, once. Returns what happened (for the task's record)."""
    return notification_emails_send([notification_id], now=now)[0]


def notification_emails_send(notification_ids, *, now: datetime.datetime | None = None) -> list[str]:
    """Send these notifications' emails, each at most once: claimed together (one UPDATE), read
    together (one query), sent one by one, marked sent together. Returns what happened to each."""
    now = now or timezone.now()
    ids = list(dict.fromkeys(int(pk) for pk in notification_ids))
    with transaction.atomic():
        free = list(Notification.objects.select_for_update().filter(
            pk__in=ids, emailed_at__isnull=True, email_claimed_at__isnull=True).values_list("pk", flat=True))
        Notification.objects.filter(pk__in=free).update(email_claimed_at=now)
    said = {pk: f"notification #{pk}: already sent or being sent" for pk in ids if pk not in set(free)}
    sent, unwanted = [], []
    for n in Notification.objects.select_related("user").filter(pk__in=free).order_by("pk"):
        user = n.user
        if not (user.is_active and user.email_notifications and user.email):
            unwanted.append(n.pk)
            said[n.pk] = f"notification #{n.pk}: not emailed ({user.email or 'no address'} turned email off or is inactive)"
            continue
        try:
            _message(n, user).send()
        except Exception as exc:            # SMTP refused, a bounce at the door, the server down
            said[n.pk] = _failed(n, user, exc, now)
            continue
        sent.append(n.pk)
        said[n.pk] = f"notification #{n.pk}: emailed to {user.email}"
    Notification.objects.filter(pk__in=sent).update(emailed_at=timezone.now(), email_error="")
    Notification.objects.filter(pk__in=unwanted).update(email_claimed_at=None)
    return [said[pk] for pk in ids]


def _message(n: Notification, user) -> EmailMultiAlternatives:
    context = {"notification": n, "user": user, "link": f"{settings.PUBLIC_URL}{n.link}" if n.link else "",
               "settings_link": f"{settings.PUBLIC_URL}/student/", "university": settings.UNIVERSITY_NAME}
    message = EmailMultiAlternatives(subject=f"Clearance: {n.title}",
                                     body=render_to_string("email/notification.txt", context), to=[user.email])
    message.attach_alternative(render_to_string("email/notification.html", context), "text/html")
    return message


def _failed(n: Notification, user, exc: Exception, now) -> str:
    attempts = n.email_attempts + 1
    Notification.objects.filter(pk=n.pk).update(email_claimed_at=None, email_attempts=attempts,
                                                email_error=f"{type(exc).__name__}: {exc}"[:2000])
    log.warning("email of notification #%s to %s failed (attempt %s): %s", n.pk, user.email, attempts, exc)
    if attempts < settings.NOTIFICATION_EMAIL_ATTEMPTS:
        _retry_later(n.pk, minutes=2 ** attempts, now=now)
        return f"notification #{n.pk}: failed ({exc}); trying again in {2 ** attempts} minutes"
    return f"notification #{n.pk}: failed {attempts} times ({exc}); given up"


def _retry_later(notification_id: int, *, minutes: int, now) -> None:
    from django_q.models import Schedule
    Schedule.objects.create(name=f"Email of notification #{notification_id} (again)", func=EMAIL_TASK,
                            args=repr(([notification_id],)), schedule_type=Schedule.ONCE, repeats=1,
                            next_run=now + datetime.timedelta(minutes=minutes))


@transaction.atomic
def notification_mark_read(*, notification: Notification, acting_user) -> Notification:
    from django.core.exceptions import PermissionDenied
    if notification.user_id != acting_user.pk:
        raise PermissionDenied("This notification is not yours.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification._history_user = acting_user
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, acting_user) -> int:
    """Mark every unread notification of `acting_user` read (one UPDATE, and one historical row
    each); returns how many. Someone else's are never touched: the query is theirs only."""
    from ..history import bulk_update_tracked
    now = timezone.now()
    unread = [{"id": pk, "read_at": now} for pk in Notification.objects.filter(
        user=acting_user, read_at__isnull=True).select_for_update().values_list("pk", flat=True)]
    bulk_update_tracked(unread, Notification, ["read_at"], user=acting_user, reason="Marked all read")
    return len(unread)


@transaction.atomic
def notifications_email_set(*, user, on: bool) -> None:
    """A person turns the emails of their notifications on or off (they stay in Clearance)."""
    from ..history import save_tracked
    if user.email_notifications != on:
        user.email_notifications = on
        save_tracked(user, user=user, reason="email notifications " + ("on" if on else "off"))
