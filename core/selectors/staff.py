"""Reads for the department staff site: the queue, overdue items, the dashboard figures, and which
students a reviewer may pick. Every function starts from core.permissions so the scope is the same
everywhere."""
from __future__ import annotations

import datetime

from django.db.models import (Count, DateTimeField, DurationField, Exists, ExpressionWrapper, F, Func, Min, OuterRef,
                              Prefetch, Q, QuerySet)
from django.utils import timezone

from .. import permissions
from ..models import ClearanceApproval, Department, Hold, Student
from ..sql.search import search_words, students_matching

A = ClearanceApproval.Status


class DaysInterval(Func):
    """An integer number of days as a duration, portable between PostgreSQL and SQLite
    (where Django keeps durations as microseconds and cannot multiply them)."""

    output_field = DurationField()
    arity = 1

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="make_interval(days => %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="((%(expressions)s) * 86400000000)", **extra)


def overdue_since_expression():
    """When a pending approval becomes overdue: the model's rule (`days_waiting > sla_days`) means
    from `waiting_since + (sla_days + 1) days` on."""
    return ExpressionWrapper(F("waiting_since") + DaysInterval(F("department__sla_days") + 1),
                             output_field=DateTimeField())


def approvals_overdue(queryset: QuerySet[ClearanceApproval], *, now=None) -> QuerySet[ClearanceApproval]:
    """Pending approvals waiting longer than their department's SLA (one SQL filter)."""
    now = now or timezone.now()
    return (queryset.filter(status=A.PENDING).alias(overdue_since=overdue_since_expression())
            .filter(overdue_since__lte=now))


def approvals_not_overdue(queryset: QuerySet[ClearanceApproval], *, now=None) -> QuerySet[ClearanceApproval]:
    now = now or timezone.now()
    return (queryset.alias(overdue_since=overdue_since_expression())
            .filter(~Q(status=A.PENDING) | Q(overdue_since__gt=now)))


def approvals_waiting(queryset: QuerySet[ClearanceApproval]) -> QuerySet[ClearanceApproval]:
    """What waits for the office: pending items whose stage is open — no item of the same request
    in an earlier stage is still to be cleared (what approve checks, core.services.approvals). Read
    from the stored `stage_open` through its index (department, status, stage_open, waiting_since):
    a page of the registry's queue costs the same at 10,000 approvals and at 1,000,000 (it probed
    every earlier item of each row looked at). `stage_open IN (true)`, not the bare column Django
    writes for `=True`: SQLite bounds an index scan only by a comparison, and without one read the
    registry's 142,000 pending items for the 551 that wait."""
    return queryset.filter(status=A.PENDING, stage_open__in=[True])


def approvals_matching(queryset: QuerySet[ClearanceApproval], text: str) -> QuerySet[ClearanceApproval]:
    """The approvals of `queryset` whose student's registration number or name holds every word of
    `text` (core/sql/search.py: an index on both databases, not a scan of the queue). The students
    are found first, then their items by student id: the scope of `queryset` is kept as it is."""
    if not search_words(text):
        return queryset
    return queryset.filter(request__student_id__in=students_matching(Student.objects.all(), text).values("pk"))


def active_holds_prefetch() -> Prefetch:
    """Active holds of each approval's student, in one query for the whole page; the list keeps the
    ones of the approval's own office (`approval.request.student.active_holds`)."""
    return Prefetch("request__student__holds",
                    queryset=Hold.objects.filter(status=Hold.Status.ACTIVE).only(
                        "pk", "student_id", "department_id", "reason", "amount").order_by("pk"),
                    to_attr="active_holds")


RECENT_REASONS_SAMPLE = 300


def recent_reasons(department_id: int, status: str, *, limit: int = 6) -> list[str]:
    """The reasons the office gave most often in its latest decisions of `status` (rejected or
    waived), most used first: there is no store of saved reasons, so what the office writes is what
    it is offered. Reads the latest RECENT_REASONS_SAMPLE decisions only, whatever the table size."""
    latest = (ClearanceApproval.objects.filter(department_id=department_id, status=status).exclude(reason="")
              .order_by("-decided_at", "-pk").values_list("reason", flat=True)[:RECENT_REASONS_SAMPLE])
    counts: dict[str, int] = {}
    for reason in latest:
        counts[reason.strip()] = counts.get(reason.strip(), 0) + 1
    return sorted(counts, key=lambda r: -counts[r])[:limit]


def staff_queue(user) -> QuerySet[ClearanceApproval]:
    """The approvals `user` may decide, ready for a list page."""
    return (permissions.approvals_for(user)
            .select_related("request__student__programme", "department")
            .prefetch_related(active_holds_prefetch()))


def students_for(user) -> QuerySet[Student]:
    """Students a reviewer may look up (to place a hold): anyone, when they review an office that
    applies beyond one school (a library book is owed whatever the school); a school office
    reviewer only sees the students with an item or hold in their scope."""
    if not (user.is_authenticated and user.is_active):
        return Student.objects.none()
    if user.is_superuser:
        return Student.objects.all()
    departments = permissions.reviewable_departments(user)
    if departments.exclude(type=Department.Type.FACULTY).exists():
        return Student.objects.all()
    in_queue = permissions.approvals_for(user).filter(request__student_id=OuterRef("pk"))
    held = permissions.holds_for(user).filter(student_id=OuterRef("pk"))
    return Student.objects.filter(Exists(in_queue) | Exists(held))


def students_for_holds(user) -> QuerySet[Student]:
    """Students a reviewer may name when placing holds (registration numbers typed in): those of
    `students_for`, and every student of the schools their school office is limited to. A number
    outside this gets the answer a number nobody has gets, so typing tells nothing of the rest."""
    students = students_for(user)
    schools = sorted({s for _, limited in permissions.review_scope(user).limited for s in limited})
    return students | Student.objects.filter(school_id__in=schools) if schools else students


def staff_dashboard_figures(user, *, now=None) -> dict:
    """The staff dashboard: per office pending and overdue, totals, oldest waiting, decided this week.
    A handful of aggregate queries, whatever the queue size."""
    now = now or timezone.now()
    scope = permissions.approvals_for(user)
    pending = scope.filter(status=A.PENDING)
    # overdue and the oldest are of what waits (stage open), as the queue the figures link to lists
    # them: an item whose stage has not opened is not the office's to clear yet
    waiting = approvals_waiting(scope)
    overdue_ids = approvals_overdue(waiting, now=now).values("pk")
    counts = {r["department_id"]: r for r in pending.values("department_id").annotate(
        pending=Count("pk"), overdue=Count("pk", filter=Q(pk__in=overdue_ids)),
        oldest=Min("waiting_since", filter=Q(stage_open=True))).order_by()}
    # every office the user reviews, with nothing pending or not
    rows = [{"department_id": d.pk, "department__code": d.code, "department__name": d.name,
             "department__sla_days": d.sla_days, "pending": 0, "overdue": 0, "oldest": None,
             **{k: v for k, v in counts.get(d.pk, {}).items() if k != "department_id"}}
            for d in permissions.reviewable_departments(user).order_by("code")]
    week_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start -= datetime.timedelta(days=week_start.weekday())
    decided = scope.filter(decided_at__gte=week_start).exclude(status=A.PENDING)
    decided_counts = dict(decided.values_list("status").annotate(n=Count("pk")).order_by())
    oldest = (waiting.select_related("request__student", "department").order_by("waiting_since", "pk").first())
    for row in rows:
        row["oldest_days"] = max((now - row["oldest"]).days, 0) if row["oldest"] else None
    return {
        "departments": rows,
        "pending": sum(r["pending"] for r in rows),
        "overdue": sum(r["overdue"] for r in rows),
        "oldest": oldest,
        "oldest_days": oldest.days_waiting if oldest else None,
        "decided_this_week": sum(decided_counts.values()),
        "decided_by_status": decided_counts,
        "decided_by_me_this_week": decided.filter(decided_by=user).count(),
        "active_holds": permissions.holds_for(user).filter(status=Hold.Status.ACTIVE).count(),
        "week_start": week_start,
    }
