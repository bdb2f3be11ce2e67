"""Holds: what an office holds against a student, independent of any request (rule 2 uses them)."""
from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import permissions
from ..history import as_system as _said, bulk_create_tracked, bulk_update_tracked
from ..models import Department, Hold, Notification, Payment, Student
from ..money import kes
from ..selectors.finance import payments_hold_coverage
from ._common import BulkResult, bulk_service, id_chunks, lock_rows, require_reason, text_within
from .finance import FINANCE_CODE, finance_clearance_follow, finance_department
from .notifications import notifications_send

H = Hold.Status
MAX_AMOUNT = Decimal("10000000")


def _check_amount(amount):
    if amount is None:
        return None
    amount = Decimal(amount)
    if amount < 0:
        raise ValidationError("A hold's amount cannot be negative.", code="negative")
    if amount > MAX_AMOUNT:
        raise ValidationError(f"{kes(amount)} is more than any fee; check the amount.", code="absurd")
    return amount


def _after_change(department: Department, student_ids, *, acting_user, reason, system=False):
    # Finance clearance follows the money (rule 5): a FIN hold change re-decides the FIN approval.
    if department.code == FINANCE_CODE:
        finance_clearance_follow(student_ids=student_ids, acting_user=acting_user, reason=reason, system=system)


def _check_actor(acting_user, system: bool, what: str) -> None:
    # system rights only where a caller says so: a missing user is a mistake, never the system
    if acting_user is None and not system:
        raise ValidationError(f"{what} needs the person who does it (a rule or a command without a user passes "
                              "system=True).", code="no_user")


@bulk_service
def holds_place(*, department: Department, student_ids: Iterable[int], reason: str, acting_user,
                amount=None, source: str = Hold.Source.MANUAL, system: bool = False) -> BulkResult:
    """Place a hold of `department` on each student. Refused: no user unless `system` (a rule);
    no reason; a negative or absurd amount; the source is the balance import (it writes its own
    holds); the user does not review this office (for all); per student: already held by this
    office for the same reason; unknown or outside the user's schools (counted alike, not named)."""
    _check_actor(acting_user, system, "Placing a hold")
    reason = require_reason(reason, "place a hold", limit=Hold._meta.get_field("reason").max_length)
    if source == Hold.Source.BALANCE_IMPORT:
        # rule 5: a balance hold is the stored balance itself; only the import writes it
        raise ValidationError("Holds that follow the fee balance are placed by balance imports only.", code="source")
    amount = _check_amount(amount)
    if not system and not permissions.can_manage_holds(acting_user, department):
        raise ValidationError(f"You do not review {department.code}, so you cannot place its holds.", code="not_yours")
    ids = list(dict.fromkeys(student_ids))
    result = BulkResult(unseen_where="not among the students you review")
    students = {s.pk: s for s in Student.objects.filter(pk__in=ids).only("pk", "registration_number", "user_id",
                                                                            "school_id")}
    existing = set(Hold.objects.filter(department=department, student_id__in=ids, status=H.ACTIVE, reason=reason)
                   .values_list("student_id", flat=True))
    allowed_school_ids = None
    if not system and department.type == Department.Type.FACULTY and not acting_user.is_superuser:
        scope = permissions.review_scope(acting_user)  # resolved once, not per student
        allowed_school_ids = {s.pk for s in students.values() if scope.covers(department.pk, s.school_id)}
    now = timezone.now()
    new = []
    for pk in ids:
        s = students.get(pk)
        if s is None:
            if system:
                result.refuse(pk, f"#{pk}", "no such student")
            else:
                result.refuse_unseen(pk)
        elif allowed_school_ids is not None and s.pk not in allowed_school_ids:
            result.refuse_unseen(pk)
        elif pk in existing:
            result.refuse(pk, s.registration_number, f"{department.code} already holds this student for “{reason}”")
        else:
            new.append(Hold(department=department, student_id=pk, reason=reason, amount=amount, source=source,
                            status=H.ACTIVE, placed_by=acting_user, placed_at=now))
            result.done.append(pk)
    bulk_create_tracked(new, Hold, user=acting_user, reason=_said(f"Hold placed: {reason}", system))
    notifications_send([dict(user_id=students[h.student_id].user_id, kind=Notification.Kind.HOLD,
                             title=f"{department.code} placed a hold",
                             message=reason + (f" ({kes(amount)})" if amount is not None else ""), link="/student/")
                        for h in new if students[h.student_id].user_id])
    _after_change(department, result.done, acting_user=acting_user, reason=f"Hold placed: {reason}", system=system)
    return result


def hold_place(*, department: Department, student: Student, reason: str, acting_user, amount=None,
               source: str = Hold.Source.MANUAL, system: bool = False) -> Hold:
    """Place one hold; refused as `holds_place` refuses."""
    holds_place(department=department, student_ids=[student.pk], reason=reason, acting_user=acting_user,
                amount=amount, source=source, system=system).raise_if_refused("student")
    return Hold.objects.filter(department=department, student=student, status=H.ACTIVE, reason=reason.strip()).latest("pk")


def _end(hold_ids, *, acting_user, new_status, reason, verb, system=False) -> BulkResult:
    _check_actor(acting_user, system, f"A hold {verb}")
    ids = list(dict.fromkeys(hold_ids))
    result = BulkResult(unseen_where="not among your offices' holds")
    holds = lock_rows(Hold.objects.select_related("department", "student"), ids, result, what="hold",
                      missing_unseen=not system)
    allowed = None
    if not system:
        scope = permissions.holds_for(acting_user)
        allowed = {pk for chunk in id_chunks([h.pk for h in holds])
                   for pk in scope.filter(pk__in=chunk).values_list("pk", flat=True)}
    now = timezone.now()
    todo = []
    for h in holds:
        label = f"{h.student.registration_number} ({h.department.code})"
        if allowed is not None and h.pk not in allowed:
            result.refuse_unseen(h.pk)
        elif h.status != H.ACTIVE:
            result.refuse(h.pk, label, f"already {h.status}")
        elif h.source == Hold.Source.BALANCE_IMPORT and not system:
            # rule 5: this hold is the stored balance; it goes when an import shows the balance paid
            result.refuse(h.pk, label, f"it follows the fee balance from the finance system ({kes(h.amount or 0)}); "
                                       "it is released by the balance import that shows the balance paid")
        else:
            h.status, h.released_by, h.released_at, h.release_reason = new_status, acting_user, now, reason
            todo.append(h)
            result.done.append(h.pk)
    bulk_update_tracked(todo, Hold, ["status", "released_by", "released_at", "release_reason"], user=acting_user,
                        reason=_said(f"Hold {verb}" + (f": {reason}" if reason else ""), system))
    notifications_send([dict(user_id=h.student.user_id, kind=Notification.Kind.HOLD,
                             title=f"{h.department.code} {verb} a hold", message=h.reason, link="/student/")
                        for h in todo if h.student.user_id])
    by_department = {}
    for h in todo:
        by_department.setdefault(h.department, []).append(h.student_id)
    for department, student_ids in by_department.items():
        _after_change(department, student_ids, acting_user=acting_user, reason=f"Hold {verb}", system=system)
    return result


@bulk_service
def holds_release(*, hold_ids: Iterable[int], acting_user, reason: str = "", system: bool = False) -> BulkResult:
    """Release holds (the student settled it). Refused: no user unless `system`; per row: not
    active; a hold that follows the imported fee balance (rule 5: only an import releases it);
    not the user's office or no such hold (counted alike, not named)."""
    reason = text_within(reason, limit=Hold._meta.get_field("release_reason").max_length, what="reason")
    return _end(hold_ids, acting_user=acting_user, new_status=H.RELEASED, reason=reason,
                verb="released", system=system)


@bulk_service
def holds_waive(*, hold_ids: Iterable[int], acting_user, reason: str, system: bool = False) -> BulkResult:
    """Waive holds (the office forgoes it) with a reason. Refused: no user unless `system`; no
    reason; per row: not active; a hold that follows the imported fee balance (the office waives
    the finance item instead); not the user's office or no such hold (counted alike, not named)."""
    reason = require_reason(reason, "waive a hold")
    return _end(hold_ids, acting_user=acting_user, new_status=H.WAIVED, reason=reason, verb="waived", system=system)


def hold_release(*, hold: Hold, acting_user, reason: str = "") -> Hold:
    holds_release(hold_ids=[hold.pk], acting_user=acting_user, reason=reason).raise_if_refused("hold")
    hold.refresh_from_db()
    return hold


def hold_waive(*, hold: Hold, acting_user, reason: str) -> Hold:
    holds_waive(hold_ids=[hold.pk], acting_user=acting_user, reason=reason).raise_if_refused("hold")
    hold.refresh_from_db()
    return hold


def paid_release_reason(payment: Payment, balance_import) -> str:
    return f"released: payment {payment.transaction_code} covers the balance of import #{balance_import.pk}"


@bulk_service
def holds_release_paid(*, payment_ids: Iterable[int], acting_user) -> BulkResult:
    """Release the FIN hold a balance import placed on a student when a verified payment covers
    the balance of that student's last import (core/selectors/finance.py: HoldCoverage: the stored
    balance minus the verified payments made after the import was applied is at most
    FINANCE_HOLD_THRESHOLD). The release reason and the history name the payment and the import;
    the hold records the payment (`released_for_payment`), and the FIN approval then follows as
    for any FIN hold released (finance_clearance_follow). The next balance import is authoritative:
    if the finance system still shows a balance it places the hold again.

    The result is per payment. Refused: no user, or one who may not both release holds and verify
    payments; per payment: no such payment; not verified; no active FIN import hold on the
    student; no import recorded for the balance, or paid before that import was applied; does not
    cover the balance (naming what is still owed); the hold is not among the user's offices'
    holds (counted, not named); its hold released by another payment of the same batch.

    Locks the holds (ascending ids) and then reads the balances and payments again: an import
    applied meanwhile rewrites these holds, so it is either seen whole or waited for."""
    if acting_user is None or not (acting_user.has_perm("core.change_hold") and acting_user.has_perm("core.change_payment")):
        raise ValidationError("Only finance officers can release a finance hold for a payment.", code="forbidden")
    fin = finance_department()
    ids = list(dict.fromkeys(payment_ids))
    result = BulkResult(unseen_where="not among your offices' holds")
    payments = {p.pk: p for chunk in id_chunks(ids) for p in Payment.objects.filter(pk__in=chunk).select_related("student")}
    for pk in ids:
        if pk not in payments:
            result.refuse(pk, f"#{pk}", "no such payment")
    first = payments_hold_coverage(payments.values())
    hold_ids = sorted({c.hold.pk for c in first.values() if c.hold is not None})
    locked = {h.student_id: h for h in Hold.objects.select_for_update(of=("self",)).filter(pk__in=hold_ids).order_by("pk")
              .select_related("department", "student", "balance_import") if h.status == H.ACTIVE} if hold_ids else {}
    coverage = payments_hold_coverage(payments.values(), holds=locked)
    allowed = {pk for chunk in id_chunks([h.pk for h in locked.values()])
               for pk in permissions.holds_for(acting_user).filter(pk__in=chunk).values_list("pk", flat=True)}
    now = timezone.now()
    released: dict[int, Payment] = {}
    for pk in ids:
        c = coverage.get(pk)
        if c is None:
            continue
        p = c.payment
        if c.refusal:
            result.refuse(pk, p.transaction_code, c.refusal)
        elif fin is None or c.hold.department_id != fin.pk or c.hold.pk not in allowed:
            result.refuse_unseen(pk)
        elif c.hold.pk in released:
            result.refuse(pk, p.transaction_code, f"the FIN hold was released for payment "
                                                  f"{released[c.hold.pk].transaction_code} of the same selection")
        else:
            h = c.hold
            reason = paid_release_reason(p, c.balance_import)
            h.status, h.released_by, h.released_at, h.release_reason = H.RELEASED, acting_user, now, reason
            h.released_for_payment = p
            # one write each: the history's reason names each hold's own payment
            bulk_update_tracked([h], Hold, ["status", "released_by", "released_at", "release_reason",
                                            "released_for_payment"], user=acting_user, reason=reason)
            released[h.pk] = p
            result.done.append(pk)
    holds = [c.hold for c in coverage.values() if c.hold is not None and c.hold.pk in released]
    notifications_send([dict(user_id=h.student.user_id, kind=Notification.Kind.HOLD,
                             title=f"{h.department.code} released a hold",
                             message=f"Your payment {released[h.pk].transaction_code} covers the balance.",
                             link="/student/") for h in holds if h.student.user_id])
    if holds:
        _after_change(fin, [h.student_id for h in holds], acting_user=acting_user,
                      reason="Hold released: a payment covers the balance")
    return result


def hold_release_paid(*, payment: Payment, acting_user) -> Hold:
    """Release one payment's FIN hold; refused as holds_release_paid refuses."""
    holds_release_paid(payment_ids=[payment.pk], acting_user=acting_user).raise_if_refused("hold")
    return Hold.objects.filter(released_for_payment=payment).latest("pk")
