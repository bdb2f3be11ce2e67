"""What the registry reads: progress of the open cycle(s), where students are held, and the
figures of its dashboard. A few aggregate queries each, whatever the number of students."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
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
