"""What the registry reads: progress of the open cycle(s), where students are held, and the
figures of its dashboard. A few aggregate queries each, whatever the number of students."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from ..models import ClearanceApproval, ClearanceCycle, ClearanceRequest, Department, Student
from .clearance import completed_but_now_held

R = ClearanceRequest.Status
A = ClearanceApproval.Status


def open_cycles(*, on: datetime.date | None = None) -> QuerySet[ClearanceCycle]:
    """Cycles open today: not closed early and today within their dates (ClearanceCycle.is_open)."""
    on = on or timezone.localdate()
    return ClearanceCycle.objects.filter(is_closed=False, opens_on__lte=on, closes_on__gte=on)


def dashboard_cycles() -> list[ClearanceCycle]:
    """The cycles the dashboard follows: the open ones, else the most recent one (so the figures
    of a cycle that just closed stay visible)."""
    cycles = list(open_cycles())
    if cycles:
        return cycles
    latest = ClearanceCycle.objects.order_by("-opens_on", "-pk").first()
    return [latest] if latest else []


def request_status_counts(cycle_ids) -> dict[str, int]:
    """Requests per status in the given cycles (every status present, zero when none); one query."""
    counts = dict.fromkeys(R.values, 0)
    rows = (ClearanceRequest.objects.filter(cycle_id__in=list(cycle_ids)).order_by()
            .values_list("status").annotate(n=Count("pk")))
    counts.update({status: n for status, n in rows})
    return counts


def completion(status_counts: dict[str, int]) -> dict:
    """Completion rate: completed over every request that is not revoked."""
    total = sum(n for status, n in status_counts.items() if status != R.REVOKED)
    completed = status_counts.get(R.COMPLETED, 0)
    return {"total": total, "completed": completed,
            "rate": round(100 * completed / total, 1) if total else 0.0}


def _overdue_q(departments, now) -> Q:
    """Pending longer than the office's SLA, as ClearanceApproval.is_overdue says (whole days
    waiting > sla_days), one branch per office so each keeps its own SLA."""
    branches = [Q(department_id=d.pk, waiting_since__lte=now - datetime.timedelta(days=d.sla_days + 1))
                for d in departments]
    return Q(status=A.PENDING) & reduce(or_, branches) if branches else Q(pk__in=[])


def departments_holding(cycle_ids, *, now=None) -> list[dict]:
    """Per office, in the given cycles' requests that are not revoked: approvals pending, rejected
    and overdue; `held` = pending + rejected. Sorted by most held. Two queries."""
    now = now or timezone.now()
    departments = list(Department.objects.only("pk", "code", "name", "sla_days"))
    rows = (ClearanceApproval.objects
            .filter(request__cycle_id__in=list(cycle_ids)).exclude(request__status=R.REVOKED)
            .order_by().values("department_id")
            .annotate(pending=Count("pk", filter=Q(status=A.PENDING)),
                      rejected=Count("pk", filter=Q(status=A.REJECTED)),
                      overdue=Count("pk", filter=_overdue_q(departments, now))))
    by_department = {row["department_id"]: row for row in rows}
    result = []
    for d in departments:
        row = by_department.get(d.pk)
        if not row:
            continue
        result.append({"department": d, "code": d.code, "name": d.name, "sla_days": d.sla_days,
                       "pending": row["pending"], "rejected": row["rejected"], "overdue": row["overdue"],
                       "held": row["pending"] + row["rejected"]})
    result.sort(key=lambda r: (-r["held"], -r["overdue"], r["code"]))
    return result


def completions_over_time(cycles, *, today=None) -> dict:
    """Requests completed per day of the given cycles (per week, Monday first, when the span is
    longer than 62 days), from the first cycle's opening to today or the last closing: every bucket
    present, zero when none. One query."""
    today = today or timezone.localdate()
    if not cycles:
        return {"unit": "day", "labels": [], "counts": []}
    start = min(c.opens_on for c in cycles)
    end = max(start, min(today, max(c.closes_on for c in cycles)))
    per_day = dict(ClearanceRequest.objects.filter(cycle__in=cycles, status=R.COMPLETED, completed_at__isnull=False)
                   .order_by().annotate(day=TruncDate("completed_at")).values_list("day")
                   .annotate(n=Count("pk")))
    if (end - start).days > 62:
        unit, first = "week", start - datetime.timedelta(days=start.weekday())
        buckets = [first + datetime.timedelta(weeks=i) for i in range((end - first).days // 7 + 1)]
        counts = dict.fromkeys(buckets, 0)
        for day, n in per_day.items():
            monday = day - datetime.timedelta(days=day.weekday())
            if monday in counts:
                counts[monday] += n
    else:
        unit = "day"
        buckets = [start + datetime.timedelta(days=i) for i in range((end - start).days + 1)]
        counts = {day: per_day.get(day, 0) for day in buckets}
    return {"unit": unit, "labels": [d.isoformat() for d in buckets], "counts": [counts[d] for d in buckets]}


def completion_by_school(cycle_ids) -> list[dict]:
    """Per school, requests that are not revoked in the given cycles: completed, on hold, and the
    rest (pending or in progress). Schools without requests are left out. One query."""
    rows = (ClearanceRequest.objects.filter(cycle_id__in=list(cycle_ids)).exclude(status=R.REVOKED).order_by()
            .values("student__school__code")
            .annotate(total=Count("pk"), completed=Count("pk", filter=Q(status=R.COMPLETED)),
                      on_hold=Count("pk", filter=Q(status=R.ON_HOLD))))
    return sorted(({"code": r["student__school__code"], "total": r["total"], "completed": r["completed"],
                    "on_hold": r["on_hold"], "waiting": r["total"] - r["completed"] - r["on_hold"],
                    "rate": round(100 * r["completed"] / r["total"], 1)} for r in rows),
                  key=lambda r: r["code"])


def median_days_to_decision(cycle_ids) -> dict[int, float]:
    """Per office, the median of (decided at − waiting since) in days over the decided approvals
    of the given cycles' requests that are not revoked. The database ranks the durations; only
    the one or two middle rows of each office come back. One query."""
    duration = ExpressionWrapper(F("decided_at") - F("waiting_since"), output_field=DurationField())
    decided = (ClearanceApproval.objects
               .filter(request__cycle_id__in=list(cycle_ids), decided_at__isnull=False)
               .exclude(status=A.PENDING).exclude(request__status=R.REVOKED).order_by()
               .annotate(duration=duration,
                         rank=Window(RowNumber(), partition_by=[F("department_id")], order_by=[duration.asc(),
                                                                                             F("pk").asc()]),
                         of=Window(Count("pk"), partition_by=[F("department_id")])))
    middle = decided.filter(Q(rank=(F("of") + 1) / 2) | Q(rank=(F("of") + 2) / 2))
    halves: dict[int, list] = {}
    for department_id, value in middle.values_list("department_id", "duration"):
        halves.setdefault(department_id, []).append(value)
    return {d: round(sum(v.total_seconds() for v in values) / len(values) / 86400, 1)
            for d, values in halves.items()}


def registry_overview() -> dict:
    """Everything the registry dashboard shows."""
    cycles = dashboard_cycles()
    cycle_ids = [c.pk for c in cycles]
    counts = request_status_counts(cycle_ids)
    return {
        "cycles": cycles,
        "cycles_open": any(c.is_open for c in cycles),
        "status_counts": counts,
        "completion": completion(counts),
        "departments": departments_holding(cycle_ids),
        "completed_but_now_held": completed_but_now_held().count(),
        "over_time": completions_over_time(cycles),
        "by_school": completion_by_school(cycle_ids),
        "median_days": median_days_to_decision(cycle_ids),
    }


# --- list helpers -------------------------------------------------------------------------------

def latest_request_status() -> Subquery:
    """For annotating students: the status of their most recent clearance request."""
    return Subquery(ClearanceRequest.objects.filter(student_id=OuterRef("pk"))
                    .order_by("-submitted_at", "-pk").values("status")[:1])


def has_open_request() -> Exists:
    """For annotating/filtering students: a request that is not revoked in a cycle open today
    (opening clearance again would count them as already open)."""
    return Exists(ClearanceRequest.objects.filter(student_id=OuterRef("pk"), cycle__in=open_cycles())
                  .exclude(status=R.REVOKED))



# --- opening clearance for a cohort ---------------------------------------------------------------

def cohort_students(*, graduation_year: int | None = None, school=None, programme=None,
                    student_ids: Iterable[int] | None = None) -> QuerySet[Student]:
    """The students a cohort opening is about: the given ones, or a cohort (expected graduation
    year), optionally narrowed to a school or a programme. Refused when neither is given."""
    students = Student.objects.all()
    if student_ids is not None:
        students = students.filter(pk__in=list(student_ids))
    elif graduation_year is None:
        raise ValidationError("Choose a cohort (expected graduation year) or some students.", code="no_selection")
    if graduation_year is not None:
        students = students.filter(expected_graduation_year=graduation_year)
    if school is not None:
        students = students.filter(school=school)
    if programme is not None:
        students = students.filter(programme=programme)
    return students.order_by("pk")


@dataclass(frozen=True)
class CohortPreview:
    """What opening clearance would do now. `after_revoked` students have only revoked requests
    in the cycle: they get a new one (the revoked one stays as it is)."""
    students: int
    already_open: int
    after_revoked: int
    new: int

    @property
    def to_open(self) -> int:
        return self.new + self.after_revoked


def cohort_open_preview(*, cycle: ClearanceCycle, **selection) -> CohortPreview:
    """Counts of `cohort_students(**selection)` by what `requests_open_for_cohort` would do with
    them in `cycle`, classified by the same rule it applies (a request that is not revoked is
    open). One query."""
    in_cycle = ClearanceRequest.objects.filter(student_id=OuterRef("pk"), cycle=cycle)
    counts = (cohort_students(**selection).order_by()
              .annotate(has_open=Exists(in_cycle.exclude(status=R.REVOKED)),
                        has_revoked=Exists(in_cycle.filter(status=R.REVOKED)))
              .aggregate(students=Count("pk"),
                         already_open=Count("pk", filter=Q(has_open=True)),
                         after_revoked=Count("pk", filter=Q(has_open=False, has_revoked=True)),
                         new=Count("pk", filter=Q(has_open=False, has_revoked=False))))
    return CohortPreview(**counts)


def has_overdue_approval(*, now=None) -> Exists:
    """For filtering requests: an approval pending longer than its office's SLA (as the
    dashboard's overdue counts say)."""
    now = now or timezone.now()
    departments = list(Department.objects.only("pk", "sla_days"))
    return Exists(ClearanceApproval.objects.filter(_overdue_q(departments, now), request_id=OuterRef("pk")))
