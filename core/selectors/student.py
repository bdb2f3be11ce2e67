"""What a student sees of their own clearance (the /student/ site). Every function takes the
student (or their user) and reads only that student's rows, in a constant number of queries."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from ..models import (Certificate, ClearanceApproval, ClearanceCycle, ClearanceRequest, Hold, Notification,
                      Payment, Student)


def student_of(user) -> Student | None:
    """The Student record linked to this login, or None (a Student-group user not linked yet)."""
    if not (user and user.is_authenticated):
        return None
    return Student.objects.select_related("school", "programme").filter(user=user).first()


@dataclass
class ApprovalView:
    """One office's item as the student reads it."""

    approval: ClearanceApproval
    holds: list[Hold]
    can_resubmit: bool
    earlier_open: list[str] = field(default_factory=list)  # earlier-stage offices not cleared yet

    @property
    def department(self):
        return self.approval.department

    @property
    def status(self) -> str:
        return self.approval.status

    @property
    def hold_amount(self) -> Decimal | None:
        amounts = [h.amount for h in self.holds if h.amount is not None]
        return sum(amounts, Decimal("0")) if amounts else None

    @property
    def days_waiting(self) -> int:
        return self.approval.days_waiting

    @property
    def is_overdue(self) -> bool:
        return self.approval.is_overdue

    @property
    def next_step(self) -> str:
        """What the student does next about this item, in a sentence (the API's `next_step`; the
        /student/ page says the same in its table)."""
        approval, department = self.approval, self.approval.department
        if approval.is_cleared:
            return f"Nothing: {department.name} has cleared you."
        if self.holds:
            held = "; ".join(f"{h.reason} (KES {h.amount:,.2f})" if h.amount is not None else h.reason
                             for h in self.holds)
            return f"Settle what {department.name} holds against you: {held}."
        if self.earlier_open:
            return f"Nothing yet: this opens once {', '.join(self.earlier_open)} cleared you."
        if approval.status == ClearanceApproval.Status.REJECTED:
            if self.can_resubmit:
                return f"Answer the reason given and re-submit to {department.name}."
            request = approval.request
            if request.status in OPEN_STATUSES and request.resubmission_count >= request.cycle.resubmission_limit:
                return (f"You have used every re-submission allowed in {request.cycle.name}; contact "
                        f"{department.name} in person.")
            return f"Contact {department.name} about the reason given."
        overdue = (f" — overdue (the office's target is {department.sla_days} days)" if self.is_overdue else "")
        return f"Nothing: waiting for {department.name}{overdue}."


@dataclass
class RequestView:
    request: ClearanceRequest
    items: list[ApprovalView] = field(default_factory=list)
    certificate: Certificate | None = None

    @property
    def cleared_count(self) -> int:
        return sum(1 for i in self.items if i.approval.is_cleared)

    @property
    def percent(self) -> int:
        return round(100 * self.cleared_count / len(self.items)) if self.items else 0

    @property
    def resubmissions_left(self) -> int:
        return max(self.request.cycle.resubmission_limit - self.request.resubmission_count, 0)


OPEN_STATUSES = (ClearanceRequest.Status.PENDING, ClearanceRequest.Status.IN_PROGRESS,
                 ClearanceRequest.Status.ON_HOLD)


def student_active_holds(student: Student) -> list[Hold]:
    return list(Hold.objects.filter(student=student, status=Hold.Status.ACTIVE)
                .select_related("department").order_by("department__stage", "department__code", "placed_at"))


def student_progress(student: Student, *, holds: list[Hold] | None = None) -> list[RequestView]:
    """The student's requests, newest first, each with every office's item and the active holds of
    that office (shown even while the item is pending: rule 1). Four queries whatever the size."""
    if holds is None:
        holds = student_active_holds(student)
    holds_by_department = defaultdict(list)
    for h in holds:
        holds_by_department[h.department_id].append(h)
    approvals = ClearanceApproval.objects.select_related("department").order_by("department__stage",
                                                                                "department__code")
    requests = (ClearanceRequest.objects.filter(student=student).select_related("cycle")
                .prefetch_related(Prefetch("approvals", queryset=approvals))
                .order_by("-submitted_at"))
    certificates = {c.request_id: c for c in Certificate.objects.filter(request__student=student)}
    views = []
    for req in requests:
        is_open = req.status in OPEN_STATUSES
        can_resubmit = (is_open and req.cycle.is_open
                        and req.resubmission_count < req.cycle.resubmission_limit)
        view = RequestView(request=req, certificate=certificates.get(req.pk))
        approvals_of_request = list(req.approvals.all())
        for a in approvals_of_request:
            a.request = req  # the items are read through their request; no query per item
            earlier_open = [b.department.code for b in approvals_of_request
                            if b.department.stage < a.department.stage and not b.is_cleared]
            view.items.append(ApprovalView(
                approval=a, holds=holds_by_department.get(a.department_id, []),
                can_resubmit=can_resubmit and a.status == ClearanceApproval.Status.REJECTED,
                earlier_open=earlier_open if a.status == ClearanceApproval.Status.PENDING else []))
        views.append(view)
    return views


def student_holds(student: Student) -> QuerySet[Hold]:
    """Every hold placed on the student (active, released or waived), newest first."""
    return Hold.objects.filter(student=student).select_related("department").order_by("-placed_at", "-pk")


def student_certificates(student: Student) -> QuerySet[Certificate]:
    """The certificates of the student's requests, newest first."""
    return Certificate.objects.filter(request__student=student).select_related("request__cycle").order_by("-pk")


def student_payments(student: Student, *, limit: int = 50) -> list[Payment]:
    """The student's payments, newest first (their receipts are downloaded from /student/)."""
    return list(Payment.objects.filter(student=student).order_by("-paid_at", "-pk")[:limit])


def cycles_open_for_submission(student: Student) -> list[ClearanceCycle]:
    """Open cycles in which the student has no open (non-revoked) request."""
    has_request = ClearanceRequest.objects.filter(student=student).exclude(
        status=ClearanceRequest.Status.REVOKED).values("cycle_id")
    today = timezone.localdate()
    return list(ClearanceCycle.objects.filter(is_closed=False, opens_on__lte=today, closes_on__gte=today)
                .exclude(pk__in=has_request).order_by("-opens_on"))


def notifications_of(user) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user)


def unread_notification_count(user) -> int:
    if not (user and user.is_authenticated):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
