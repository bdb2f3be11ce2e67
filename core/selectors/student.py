"""What a student sees of their own clearance (the /student/ site). Every function takes the
student (or their user) and reads only that student's rows, in a constant number of queries."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from ..models import (Certificate, ClearanceApproval, ClearanceCycle, ClearanceRequest, Hold, Notification,
                      Payment, Student)
from ..services.finance import FINANCE_CODE


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
    next_step: str = ""         # what the student does now, in a sentence
    finance_follows: bool = False

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
    def waits(self) -> bool:
        """The office has the item in front of it: pending, and its stage is open. A decided item
        waits for nobody; one whose earlier stages are not cleared has not reached the office."""
        return self.approval.status == ClearanceApproval.Status.PENDING and not self.earlier_open

    @property
    def days_waiting(self) -> int | None:
        """Days the office has had it, or None when it does not wait (see `waits`)."""
        return self.approval.days_waiting if self.waits else None

    @property
    def is_overdue(self) -> bool:
        return self.waits and self.approval.is_overdue


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
    def cards(self) -> list[ApprovalView]:
        """The items in the order a student acts on them: rejected, then waiting at an office, then
        not open yet, then cleared; by stage and office within each."""
        def rank(item: ApprovalView) -> int:
            if item.status == ClearanceApproval.Status.REJECTED:
                return 0
            if item.waits:
                return 1
            return 2 if item.status == ClearanceApproval.Status.PENDING else 3
        return sorted(self.items, key=rank)

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
            item = ApprovalView(
                approval=a, holds=holds_by_department.get(a.department_id, []),
                can_resubmit=(can_resubmit and a.status == ClearanceApproval.Status.REJECTED
                              and not _finance_follows(a)),
                earlier_open=earlier_open if a.status == ClearanceApproval.Status.PENDING else [],
                finance_follows=_finance_follows(a))
            item.next_step = _next_step(item, view, is_open=is_open, cycle_open=req.cycle.is_open)
            view.items.append(item)
        views.append(view)
    return views


def _finance_follows(approval: ClearanceApproval) -> bool:
    """The finance item follows the balance (rule 5): paying, not re-submitting, clears it."""
    return settings.FINANCE_AUTO_CLEAR and approval.department.code == FINANCE_CODE


def _next_step(item: ApprovalView, view: RequestView, *, is_open: bool, cycle_open: bool) -> str:
    """What the student does about this office now, in one sentence."""
    A = ClearanceApproval.Status
    office = item.department.name
    if item.status in (A.APPROVED, A.WAIVED):
        return "Nothing to do: this office has cleared you."
    if not is_open:
        return "Nothing to do here: this request is closed."
    if item.earlier_open:
        return (f"Nothing to do yet: {office} looks at your clearance once "
                f"{', '.join(item.earlier_open)} {'has' if len(item.earlier_open) == 1 else 'have'} cleared you.")
    if item.status == A.PENDING:
        if item.holds:
            return f"Settle the hold {office} placed; the office clears you once it is released."
        if item.approval.student_response:
            return f"Nothing to do: {office} is reading your response."
        return f"Nothing to do: {office} is reviewing your clearance."
    # rejected
    if item.finance_follows:
        return ("Pay the balance named in the reason; finance clears you by itself after its next balance "
                "import. If you have paid, show your receipt at the finance office.")
    if item.can_resubmit:
        return (f"Do what the reason asks, then re-submit with your response (and the file {office} "
                f"asked for, if any).")
    if not cycle_open:
        return f"Re-submissions are closed with the cycle; go to {office} in person."
    if view.resubmissions_left == 0:
        return f"You have used every re-submission allowed in {view.request.cycle.name}; go to {office} in person."
    return f"Go to {office} in person."


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


def unread_notifications(user, *, limit: int = 3) -> list[Notification]:
    """The newest unread notifications, shown whole on the student's page."""
    if not (user and user.is_authenticated):
        return []
    return list(Notification.objects.filter(user=user, read_at__isnull=True).order_by("-created_at", "-pk")[:limit])


def unread_notification_count(user) -> int:
    if not (user and user.is_authenticated):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
