"""Reads for the gown store (DESIGN.md rule 6): gowns out, overdue returns, deposits held, the
dashboard figures, what the scan box found, and why a student cannot have a gown yet. The
registry's `gowns` report (core/selectors/reports.py) reads the same querysets, so the store's
lists and the report always count the same gowns."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from ..models import ClearanceApproval, ClearanceRequest, GownIssuance, Student, normalize_registration_number

D = GownIssuance.DepositStatus
R = ClearanceRequest.Status
A = ClearanceApproval.Status

OUT = Q(returned_at__isnull=True)
HELD = Q(deposit_status=D.HELD)


def _all(queryset):
    return GownIssuance.objects.all() if queryset is None else queryset


def overdue_q(today: datetime.date | None = None) -> Q:
    """Out and past its expected return date (GownIssuance.is_overdue is the same rule)."""
    return OUT & Q(expected_return_on__lt=today or timezone.localdate())


def gowns_out(queryset: QuerySet[GownIssuance] | None = None) -> QuerySet[GownIssuance]:
    return _all(queryset).filter(OUT)


def gowns_overdue(queryset: QuerySet[GownIssuance] | None = None, *, today=None) -> QuerySet[GownIssuance]:
    return _all(queryset).filter(overdue_q(today))


def deposits_held(queryset: QuerySet[GownIssuance] | None = None) -> QuerySet[GownIssuance]:
    """Deposits not settled yet: every gown out, and gowns back whose deposit is not refunded yet."""
    return _all(queryset).filter(HELD)


def gowns_out_or_deposit_held(queryset: QuerySet[GownIssuance] | None = None) -> QuerySet[GownIssuance]:
    """What the registry's gowns report lists."""
    return _all(queryset).filter(OUT | HELD)


def gown_store_figures(*, today=None) -> dict:
    """The gown clerk's dashboard card: one aggregate query."""
    figures = GownIssuance.objects.aggregate(
        out=Count("pk", filter=OUT), overdue=Count("pk", filter=overdue_q(today)),
        held=Count("pk", filter=HELD), held_amount=Sum("deposit", filter=HELD),
        back_held=Count("pk", filter=HELD & ~OUT))
    figures["held_amount"] = figures["held_amount"] or Decimal("0")
    return figures


def default_return_date(today=None) -> datetime.date:
    """The expected return date the issue form offers: GOWN_RETURN_DAYS after today."""
    return (today or timezone.localdate()) + datetime.timedelta(days=settings.GOWN_RETURN_DAYS)


def normalize_gown_code(value: str | None) -> str:
    """` g-001 ` → `G-001`: codes are stored upper-case and trimmed, as a scanner or a clerk types them."""
    return (value or "").strip().upper()


def gown_out_of(student: Student) -> GownIssuance | None:
    return GownIssuance.objects.filter(student=student, returned_at__isnull=True).first()


def not_cleared_reason(student: Student) -> str | None:
    """Why `student` may not have a gown yet under GOWN_REQUIRES_COMPLETED (None: they may): no
    completed clearance request; the offices still to clear their latest request are named."""
    if not settings.GOWN_REQUIRES_COMPLETED:
        return None
    if ClearanceRequest.objects.filter(student=student, status=R.COMPLETED).exists():
        return None
    number = student.registration_number
    latest = ClearanceRequest.objects.filter(student=student).order_by("-created_at", "-pk").first()
    rule = "a gown is issued only after every office has cleared the student."
    if latest is None:
        return f"{number} is not cleared yet: no clearance request has been opened; {rule}"
    waiting = list(latest.approvals.exclude(status__in=[A.APPROVED, A.WAIVED]).order_by("department__code")
                   .values_list("department__code", "status"))
    offices = ", ".join(f"{code} ({status})" for code, status in waiting)
    state = latest.get_status_display().lower()
    return (f"{number} is not cleared yet: the clearance is {state}"
            + (f", waiting for {offices}" if offices else "") + f"; {rule}")


@dataclass
class ScanResult:
    """What the scan box found: a student to issue to, a gown to take back, or why neither."""

    kind: str                       # "issue", "return", "refused"
    message: str = ""
    student: Student | None = None
    gown: GownIssuance | None = None     # the gown to take back, or the one a refusal is about


def gown_scan(text: str | None) -> ScanResult:
    """One box for a registration number or a gown code. A registration number: the student, if
    they may have a gown now (cleared, none out); a gown code that is out: that gown, to take back.
    Otherwise the reason, in the clerk's words."""
    raw = (text or "").strip()
    if not raw:
        return ScanResult("refused", "Type or scan a registration number or a gown code.")
    if len(raw) > 60:
        return ScanResult("refused", "That is too long for a registration number or a gown code.")
    number = normalize_registration_number(raw)
    student = Student.objects.filter(registration_number=number).first()
    if student is not None:
        out = gown_out_of(student)
        if out is not None:
            return ScanResult("refused", f"{number} already has gown {out.gown_code} out (issued "
                                         f"{timezone.localtime(out.issued_at):%d %b %Y}); take it back first.",
                              student=student, gown=out)
        reason = not_cleared_reason(student)
        if reason:
            return ScanResult("refused", reason, student=student)
        return ScanResult("issue", student=student)
    code = normalize_gown_code(raw)
    gown = GownIssuance.objects.select_related("student").filter(gown_code=code).order_by("-issued_at", "-pk").first()
    if gown is not None and gown.returned_at is None:
        return ScanResult("return", gown=gown, student=gown.student)
    if gown is not None:
        held = " Its deposit is still held." if gown.deposit_status == D.HELD else ""
        return ScanResult("refused", f"Gown {code} is not out: it was returned on "
                                     f"{timezone.localtime(gown.returned_at):%d %b %Y}.{held} "
                                     "It can be issued again from a student's registration number.", gown=gown)
    if "/" in raw:
        return ScanResult("refused", f"No student has the registration number {number}.")
    return ScanResult("refused", f"Nothing matches {raw}: no student has that registration number and no gown "
                                 "with that code has been issued.")
