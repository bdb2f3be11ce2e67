"""Opening, submitting and revoking clearance requests (workflow rules 1 and 4)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..history import bulk_create_tracked, save_tracked
from ..models import (Certificate, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department, Hold,
                      Notification, Student)
from ..selectors.registry import cohort_students
from ._common import chunked, id_chunks, require_reason
from .finance import FINANCE_CODE, finance_hold_reason
from .notifications import notifications_send
from .status import derive_request_status, stages_open

R = ClearanceRequest.Status


@dataclass
class OpenResult:
    created: list[int] = field(default_factory=list)  # request ids
    already_open: int = 0
    approvals_created: int = 0
    after_revoked: int = 0  # of `created`: students whose earlier request in the cycle was revoked

    @property
    def created_count(self) -> int:
        return len(self.created)


def check_cycle_open(cycle: ClearanceCycle) -> None:
    """Refused (ValidationError) unless `cycle` is open today; also what a preview checks first."""
    if cycle.is_closed:
        raise ValidationError(f"The cycle {cycle} has been closed.", code="cycle_closed")
    today = timezone.localdate()
    if today < cycle.opens_on:
        raise ValidationError(f"The cycle {cycle} opens on {cycle.opens_on:%d %b %Y}.", code="cycle_not_open")
    if today > cycle.closes_on:
        raise ValidationError(f"The cycle {cycle} closed on {cycle.closes_on:%d %b %Y}.", code="cycle_closed")


def _departments_with_schools() -> list[tuple[Department, set[int]]]:
    return [(d, {s.pk for s in d.schools.all()})
            for d in Department.objects.filter(is_active=True).prefetch_related("schools")]


def _finance_at_opening(student_ids, departments, now):
    """Rule 5 from the first moment (FINANCE_AUTO_CLEAR): the finance item is created decided —
    approved when the student has no active finance hold, rejected naming the amount when they
    have — unless an office of an earlier stage applies to the student, when it waits like any
    other (and follows the holds once that stage clears). Returns a function giving the fields of
    a new approval from (student id, office, the student's offices)."""
    fin = next((d for d, _ in departments if d.code == FINANCE_CODE), None)
    if fin is None or not settings.FINANCE_AUTO_CLEAR:
        return lambda student_id, department, offices: {}
    held = defaultdict(list)
    for chunk in id_chunks(student_ids):
        for student_id, amount, why in Hold.objects.filter(department=fin, status=Hold.Status.ACTIVE,
                                                           student_id__in=chunk).values_list(
                "student_id", "amount", "reason"):
            held[student_id].append((amount, why))

    def fields(student_id, department, offices):
        if department.pk != fin.pk or any(d.stage < fin.stage for d in offices):
            return {}
        holds = held.get(student_id)
        if holds:
            reason = finance_hold_reason(sum((a or 0) for a, _ in holds), [why for _, why in holds])
            return dict(status=ClearanceApproval.Status.REJECTED, reason=reason, decided_at=now)
        return dict(status=ClearanceApproval.Status.APPROVED, decided_at=now)
    return fields


def _open_for_students(students: QuerySet[Student], *, cycle, acting_user, reason, request_reason) -> OpenResult:
    """Bulk: one request per student without an open one in the cycle, and one pending approval per
    applicable active office. Queries grow with batches of 2,000 students, not with students."""
    result = OpenResult()
    departments = _departments_with_schools()
    now = timezone.now()
    history_reason = reason or "Clearance opened"
    student_ids = list(students.values_list("pk", flat=True))
    for ids in chunked(student_ids):
        already = set(ClearanceRequest.objects.filter(cycle=cycle, student_id__in=ids).exclude(status=R.REVOKED)
                      .values_list("student_id", flat=True))
        result.already_open += len(already)
        batch = [s for s in Student.objects.filter(pk__in=ids).only("pk", "school_id", "is_resident", "user_id")
                 if s.pk not in already]
        if not batch:
            continue
        result.after_revoked += (ClearanceRequest.objects.filter(cycle=cycle, status=R.REVOKED,
                                                                 student_id__in=[s.pk for s in batch])
                                 .values("student_id").distinct().count())
        finance_fields = _finance_at_opening([s.pk for s in batch], departments, now)
        planned = {}
        for s in batch:
            offices = [d for d, school_ids in departments if d.applies_to_student(s, school_ids)]
            planned[s.pk] = [(d, finance_fields(s.pk, d, offices)) for d in offices]
        requests = [ClearanceRequest(student_id=s.pk, cycle=cycle, reason=request_reason, submitted_at=now,
                                     opened_by=acting_user,
                                     status=derive_request_status([f.get("status", ClearanceApproval.Status.PENDING)
                                                                   for _, f in planned[s.pk]]))
                    for s in batch]
        requests = bulk_create_tracked(requests, ClearanceRequest, user=acting_user, reason=history_reason)
        by_student = {r.student_id: r for r in requests}
        # which items wait from the start (finance may be cleared already at opening)
        approvals = [ClearanceApproval(request_id=by_student[s.pk].pk, department_id=d.pk, waiting_since=now,
                                       stage_open=opened, **f)
                     for s in batch
                     for (d, f), opened in zip(planned[s.pk], stages_open(
                         (d.stage, f.get("status", ClearanceApproval.Status.PENDING)) for d, f in planned[s.pk]))]
        bulk_create_tracked(approvals, ClearanceApproval, user=acting_user, reason=history_reason)
        result.created.extend(r.pk for r in requests)
        result.approvals_created += len(approvals)
        notifications_send([
            dict(user_id=s.user_id, kind=Notification.Kind.INFO, title="Your clearance is open",
                 message=f"Clearance for {cycle} is open. Follow each office's decision here.", link="/student/")
            for s in batch if s.user_id])
    return result


@transaction.atomic
def request_open(*, student: Student, cycle: ClearanceCycle, acting_user,
                 request_reason: str = ClearanceRequest.Reason.GRADUATION) -> tuple[ClearanceRequest, bool]:
    """Open a student's request in a cycle with one pending approval per applicable office.
    Opening twice does nothing new: returns (request, False). Refused when the cycle is not open."""
    existing = ClearanceRequest.objects.filter(student=student, cycle=cycle).exclude(status=R.REVOKED).first()
    if existing:
        return existing, False
    check_cycle_open(cycle)
    result = _open_for_students(Student.objects.filter(pk=student.pk), cycle=cycle, acting_user=acting_user,
                                reason="Clearance opened", request_reason=request_reason)
    return ClearanceRequest.objects.get(pk=result.created[0]), True


@transaction.atomic
def request_submit(*, student: Student, cycle: ClearanceCycle, acting_user,
                   request_reason: str = ClearanceRequest.Reason.GRADUATION) -> ClearanceRequest:
    """A student opens their own request. Refused: not their own record; the cycle is not open;
    they already have an open request in this cycle."""
    if acting_user is None or student.user_id != acting_user.pk:
        raise ValidationError("You can only submit your own clearance request.", code="not_yours")
    request, created = request_open(student=student, cycle=cycle, acting_user=acting_user,
                                    request_reason=request_reason)
    if not created:
        raise ValidationError(f"You already have a clearance request in {cycle}.", code="already_open")
    return request


@transaction.atomic
def requests_open_for_cohort(*, cycle: ClearanceCycle, acting_user, graduation_year: int | None = None,
                             school=None, programme=None, student_ids: Iterable[int] | None = None) -> OpenResult:
    """Open requests for a whole cohort (optionally one school or programme) or for the given
    students. Students who already have an open request in the cycle are counted, not touched;
    those whose request in it was revoked get a new one, counted apart (`after_revoked`), as
    `cohort_open_preview` shows beforehand. Refused when the cycle is not open or nobody is
    selected."""
    check_cycle_open(cycle)
    students = cohort_students(graduation_year=graduation_year, school=school, programme=programme,
                               student_ids=student_ids)
    what = f"cohort {graduation_year}" if graduation_year else "selected students"
    return _open_for_students(students, cycle=cycle, acting_user=acting_user,
                              reason=f"Clearance opened for {what}", request_reason=ClearanceRequest.Reason.GRADUATION)


@transaction.atomic
def request_revoke(*, request: ClearanceRequest, acting_user, reason: str) -> ClearanceRequest:
    """Revoke a request (normally a completed one that is now held); revokes its certificate too.
    Refused: no reason; already revoked."""
    reason = require_reason(reason, "revoke a clearance")
    request = ClearanceRequest.objects.select_for_update().select_related("student").get(pk=request.pk)
    if request.status == R.REVOKED:
        raise ValidationError("This clearance request is already revoked.", code="already_revoked")
    now = timezone.now()
    request.revoked_at, request.revoked_by, request.revoked_reason = now, acting_user, reason
    request.status = derive_request_status([], revoked=True)
    save_tracked(request, user=acting_user, reason=f"Revoked: {reason}")
    certificate = Certificate.objects.filter(request=request, revoked_at__isnull=True).first()
    if certificate:
        certificate.revoked_at, certificate.revoked_by, certificate.revoked_reason = now, acting_user, reason
        save_tracked(certificate, user=acting_user, reason=f"Clearance revoked: {reason}")
    if request.student.user_id:
        notifications_send([dict(user_id=request.student.user_id, kind=Notification.Kind.REVOKED,
                                 title="Your clearance was revoked", message=f"Reason: {reason}", link="/student/")])
    return request
