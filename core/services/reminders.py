"""Around the clock: what the schedules send and do, each also a command with --dry-run.

- `digests_send`: each reviewer, once a day, an email of what waits in their offices (counts,
  overdue, the oldest, links), only when something waits.
- `escalations_send`: items waiting longer than their office's `sla_days`, to the office's head
  (`head_email`): one email per head, each item at most once a day.
- `cycles_close`: cycles past their end date closed, in their history.

"Once a day" is an `EmailSent` row (kind, key, day) inserted before the email goes, under a unique
constraint: two workers running the same schedule send one email, and a task delivered again sends
nothing new. The schedules are made after every migrate (`reminders_schedule_ensure`) and can be
changed in /admin/ → Schedules."""
from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Min
from django.template.loader import render_to_string
from django.utils import timezone

from .. import locks, permissions
from ..history import as_system, save_tracked
from ..models import ClearanceApproval, ClearanceCycle, Department, EmailSent

log = logging.getLogger(__name__)
A = ClearanceApproval.Status
SCHEDULES = {
    # name: (task, the setting with its local time)
    "Daily digests": ("core.tasks.digests_task", "DIGEST_TIME"),
    "Escalate overdue items": ("core.tasks.escalations_task", "ESCALATION_TIME"),
    "Close ended cycles": ("core.tasks.cycles_close_task", "CYCLE_CLOSE_TIME"),
}


@dataclass
class OfficeWaiting:
    code: str
    name: str
    waiting: int
    overdue: int
    oldest: datetime.datetime | None
    link: str


@dataclass
class Digest:
    email: str
    name: str
    offices: list[OfficeWaiting]
    sent: bool = False

    @property
    def waiting(self) -> int:
        return sum(o.waiting for o in self.offices)


@dataclass
class Escalation:
    head_email: str
    offices: list[tuple[Department, list[ClearanceApproval]]] = field(default_factory=list)
    sent: bool = False

    @property
    def count(self) -> int:
        return sum(len(items) for _, items in self.offices)


def claim_once(kind: str, key: str, day: datetime.date) -> bool:
    """True once per (kind, key, day), whichever process asks first."""
    try:
        with transaction.atomic():
            EmailSent.objects.create(kind=kind, key=key, day=day)
    except IntegrityError:
        return False
    return True


def _send(to: str, subject: str, template: str, context: dict) -> None:
    context = {**context, "public_url": settings.PUBLIC_URL, "university": settings.UNIVERSITY_NAME}
    message = EmailMultiAlternatives(subject=subject, body=render_to_string(f"email/{template}.txt", context), to=[to])
    message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    message.send()


def _queue_link(department_id: int, *, overdue: bool = False) -> str:
    return (f"{settings.PUBLIC_URL}/staff/core/clearanceapproval/?status__exact=pending&department={department_id}"
            + ("&overdue=yes" if overdue else ""))


def _reviewers():
    """Active people who review some office (their own or by delegation)."""
    staff = get_user_model().objects.filter(is_active=True, groups__name=permissions.STAFF).distinct()
    return [u for u in staff.order_by("email") if permissions.reviewable_departments(u).exists()]


def digest_of(user, *, now: datetime.datetime) -> Digest:
    """What waits in `user`'s offices: per office the pending items, the overdue ones and the oldest."""
    pending = permissions.approvals_for(user).filter(status=A.PENDING)
    rows = (pending.values("department_id", "department__code", "department__name", "department__sla_days")
            .annotate(n=Count("pk"), oldest=Min("waiting_since")).order_by("department__code"))
    offices = []
    for row in rows:
        cutoff = now - datetime.timedelta(days=row["department__sla_days"])
        overdue = pending.filter(department_id=row["department_id"], waiting_since__lt=cutoff).count()
        offices.append(OfficeWaiting(row["department__code"], row["department__name"], row["n"], overdue,
                                     row["oldest"], _queue_link(row["department_id"])))
    return Digest(email=user.email, name=user.full_name or user.email, offices=offices)


def digests_send(*, now: datetime.datetime | None = None, dry_run: bool = False) -> list[Digest]:
    """Each reviewer with something waiting gets today's digest (once). Returns the digests made,
    sent or (dry run) not."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    digests = []
    for user in _reviewers():
        digest = digest_of(user, now=now)
        if not digest.waiting:
            continue
        digests.append(digest)
        if dry_run or not claim_once("digest", f"user:{user.pk}", day):
            continue
        _send(user.email, f"Clearance: {digest.waiting} item{'s' if digest.waiting != 1 else ''} waiting in your "
                          "offices", "digest", {"digest": digest, "day": day})
        digest.sent = True
    return digests


def escalations_send(*, now: datetime.datetime | None = None, dry_run: bool = False,
                     listed: int = 20) -> list[Escalation]:
    """Items waiting past their office's `sla_days`, not escalated yet today, to the office head:
    one email per head (all their offices), listing the oldest `listed` per office."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    if dry_run:
        return _escalations(now, day)
    try:
        # one process at a time: the items it emails are marked sent before the next one reads them
        with locks.held("escalations", day.toordinal(), wait=0):
            return _escalate(now, day, listed)
    except locks.LockBusy:
        log.info("escalations of %s: another process is sending them", day)
        return []


def _escalations(now, day) -> list[Escalation]:
    already = set(EmailSent.objects.filter(kind="escalation", day=day).values_list("key", flat=True))
    by_head: dict[str, Escalation] = {}
    for department in Department.objects.filter(is_active=True).exclude(head_email="").order_by("code"):
        cutoff = now - datetime.timedelta(days=department.sla_days)
        items = [a for a in (ClearanceApproval.objects.filter(department=department, status=A.PENDING,
                                                              waiting_since__lt=cutoff)
                             .select_related("request__student").order_by("waiting_since"))
                 if f"approval:{a.pk}" not in already]
        if items:
            by_head.setdefault(department.head_email.lower(), Escalation(department.head_email.lower())) \
                .offices.append((department, items))
    return list(by_head.values())


def _escalate(now, day, listed) -> list[Escalation]:
    escalations = _escalations(now, day)
    for escalation in escalations:
        keys = [f"approval:{a.pk}" for _, items in escalation.offices for a in items]
        EmailSent.objects.bulk_create([EmailSent(kind="escalation", key=k, day=day) for k in keys],
                                      ignore_conflicts=True)
        _send(escalation.head_email, f"Clearance: {escalation.count} item{'s' if escalation.count != 1 else ''} "
                                     "past their office's time", "escalation",
              {"escalation": escalation, "day": day, "listed": listed, "now": now,
               "offices": [(d, items[:listed], len(items) - min(len(items), listed), _queue_link(d.pk, overdue=True))
                           for d, items in escalation.offices]})
        escalation.sent = True
    return escalations


def cycles_close(*, today: datetime.date | None = None, dry_run: bool = False) -> list[ClearanceCycle]:
    """Close every open cycle whose end date has passed (history: "system: closed, its end date passed")."""
    today = today or timezone.localdate()
    ended = list(ClearanceCycle.objects.filter(is_closed=False, closes_on__lt=today).order_by("closes_on"))
    if dry_run:
        return ended
    closed = []
    for cycle in ended:
        with transaction.atomic():
            cycle = ClearanceCycle.objects.select_for_update().get(pk=cycle.pk)
            if cycle.is_closed:
                continue
            cycle.is_closed = True
            save_tracked(cycle, user=None, reason=as_system(f"Cycle closed: its end date ({cycle.closes_on}) passed"))
        closed.append(cycle)
    return closed


def reminders_schedule_ensure(**kwargs) -> None:
    """The three daily schedules (visible and editable in /admin/ → Schedules), at their settings'
    local times; idempotent, run after every migrate. An empty time removes its schedule."""
    from django_q.models import Schedule
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return
    for name, (func, setting) in SCHEDULES.items():
        value = getattr(settings, setting, "")
        if not value:
            Schedule.objects.filter(name=name).delete()
            continue
        at = datetime.datetime.strptime(value, "%H:%M").time()
        now = timezone.localtime()
        run = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
        Schedule.objects.get_or_create(name=name, defaults=dict(
            func=func, schedule_type=Schedule.DAILY, repeats=-1,
            next_run=run if run > now else run + datetime.timedelta(days=1)))
