"""Gowns (workflow rule 6): issued only to cleared students; deposits refunded only after return.

Every service here is for the gown store's clerks (permissions.may_run_gown_store) and locks what it
decides on before reading it, so two clerks at once cannot issue one gown twice or refund one
deposit twice: the second waits for the first and then reads what the first wrote."""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import permissions
from ..history import save_tracked
from ..models import REASON_MAX_LENGTH, GownIssuance, Student
from ..money import kes
from ..selectors.gowns import default_return_date, normalize_gown_code, not_cleared_reason
from ._common import BulkResult, lock_rows, text_within

D = GownIssuance.DepositStatus
CENT = Decimal("0.01")


def _require_store(acting_user) -> None:
    if not permissions.may_run_gown_store(acting_user):
        raise ValidationError("Only the gown store's staff issue gowns, take them back and refund deposits.",
                              code="not_gown_store")


def _amount(value, what: str) -> Decimal:
    """A KES amount with at most two decimals, from a Decimal, a number or text a form let through."""
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
        exact = amount.is_finite() and amount == amount.quantize(CENT)
    except (InvalidOperation, ValueError):
        raise ValidationError(f"The {what} is not an amount in KES.", code="not_an_amount") from None
    if not exact:
        raise ValidationError(f"The {what} must be an amount in KES with at most two decimals.",
                              code="not_an_amount")
    return amount


def _day(moment) -> str:
    return f"{timezone.localtime(moment):%d %b %Y}"


@transaction.atomic
def gown_issue(*, student: Student, gown_code: str, size: str, acting_user, expected_return_on: date | None = None,
               deposit=None) -> GownIssuance:
    """Issue a gown (expected back GOWN_RETURN_DAYS from today unless a date is given; the model's
    default deposit unless one is given). Refused: not a gown store clerk; the student's clearance
    is not completed (GOWN_REQUIRES_COMPLETED); the student already has a gown out; this gown is out
    with someone else; a negative deposit; a return date in the past.

    Locks the student's row, then the rows of this gown still out: two issues to one student, or
    of one gown, run one after the other and the second is refused. Two first issues of a code
    never seen before have no row to lock; the partial unique constraint `gown_out_once` referees
    them and its violation is the same refusal."""
    _require_store(acting_user)
    gown_code = normalize_gown_code(gown_code)
    if not gown_code:
        raise ValidationError("Give the gown's code.", code="no_code")
    deposit = GownIssuance._meta.get_field("deposit").default if deposit is None else _amount(deposit, "deposit")
    if deposit < 0:
        raise ValidationError("The deposit cannot be negative.", code="negative")
    expected_return_on = expected_return_on or default_return_date()
    if expected_return_on < timezone.localdate():
        raise ValidationError("The expected return date is in the past.", code="past")
    student = Student.objects.select_for_update().get(pk=student.pk)
    reason = not_cleared_reason(student)
    if reason:
        raise ValidationError(reason, code="not_cleared")
    out = (GownIssuance.objects.select_for_update().filter(gown_code=gown_code, returned_at__isnull=True)
           .select_related("student").first())
    mine = GownIssuance.objects.filter(student=student, returned_at__isnull=True).first()
    if mine is not None:
        raise ValidationError(f"{student.registration_number} already has a gown that has not been returned "
                              f"({mine.gown_code}, issued {_day(mine.issued_at)}).", code="already_out")
    if out is not None:
        raise ValidationError(f"Gown {gown_code} is out with another student ({out.student.registration_number}); "
                              "it must be returned before it is issued again.", code="gown_out")
    gown = GownIssuance(student=student, gown_code=gown_code, size=size, expected_return_on=expected_return_on,
                        deposit=deposit, issued_by=acting_user)
    gown.full_clean(exclude=["student"], validate_constraints=False)
    try:
        with transaction.atomic():
            return save_tracked(gown, user=acting_user, reason=f"Gown {gown_code} issued")
    except IntegrityError:
        # another clerk issued this code (never out before) at the same instant and committed first;
        # the savepoint is gone, so this reads what they committed
        mine = GownIssuance.objects.filter(student=student, returned_at__isnull=True).first()
        if mine is not None:
            raise ValidationError(f"{student.registration_number} already has a gown that has not been returned "
                                  f"({mine.gown_code}, issued {_day(mine.issued_at)}).", code="already_out") from None
        raise ValidationError(f"Gown {gown_code} is out with another student; it must be returned before it is "
                              "issued again.", code="gown_out") from None


def _return(gown: GownIssuance, *, acting_user, damage_notes: str) -> GownIssuance:
    """The return of a locked gown row. Refused: not out."""
    if gown.returned_at:
        raise ValidationError(f"Gown {gown.gown_code} is not out: it was already returned on {_day(gown.returned_at)}.",
                              code="returned")
    gown.returned_at = timezone.now()
    gown.damage_notes = damage_notes
    return save_tracked(gown, user=acting_user, reason="Gown returned" + (" damaged" if damage_notes else ""))


def _damage_notes(text) -> str:
    return text_within(text, limit=GownIssuance._meta.get_field("damage_notes").max_length, what="damage note")


@transaction.atomic
def gown_return(*, gown: GownIssuance, acting_user, damage_notes: str = "") -> GownIssuance:
    """Record a gown's return (with damage notes if any). Refused: not a gown store clerk; not out
    (already returned). Locks the gown's row."""
    _require_store(acting_user)
    damage_notes = _damage_notes(damage_notes)
    gown = GownIssuance.objects.select_for_update().get(pk=gown.pk)
    return _return(gown, acting_user=acting_user, damage_notes=damage_notes)


def _label(gown: GownIssuance) -> str:
    return f"{gown.gown_code} ({gown.student.registration_number})"


@transaction.atomic
def gowns_return(*, gown_ids, acting_user, damage_notes: str = "") -> BulkResult:
    """Record the return of several gowns at once (the same damage note on each, if any). Each
    gown already back is refused with when it came back; an id of no gown is refused as such.
    Locks the rows in id order."""
    _require_store(acting_user)
    damage_notes = _damage_notes(damage_notes)
    result = BulkResult()
    ids = sorted(set(gown_ids))
    for gown in lock_rows(GownIssuance.objects.select_related("student"), ids, result, what="gown"):
        try:
            _return(gown, acting_user=acting_user, damage_notes=damage_notes)
        except ValidationError as exc:
            result.refuse(gown.pk, _label(gown), " ".join(exc.messages))
        else:
            result.done.append(gown.pk)
    return result


def _refund(gown: GownIssuance, *, acting_user, amount, retained_reason: str) -> GownIssuance:
    """Settle the deposit of a locked gown row (see gown_deposit_refund)."""
    if not gown.returned_at:
        raise ValidationError(f"Gown {gown.gown_code} is still out: the deposit is refunded only after the gown is "
                              "returned.", code="not_returned")
    if gown.deposit_status != D.HELD:
        by = f" by {gown.deposit_settled_by}" if gown.deposit_settled_by_id else ""
        when = f" on {_day(gown.deposit_settled_at)}" if gown.deposit_settled_at else ""
        raise ValidationError(f"This deposit was already settled ({gown.get_deposit_status_display().lower()}){when}"
                              f"{by}: {kes(gown.refunded_amount)} refunded.", code="settled")
    if amount is None:
        if gown.damage_notes:
            raise ValidationError(f"Gown {gown.gown_code} came back damaged ({gown.damage_notes}): say how much of the "
                                  "deposit to refund.", code="amount_required")
        amount = gown.deposit
    amount = _amount(amount, "refund")
    if amount < 0 or amount > gown.deposit:
        raise ValidationError(f"The refund must be between KES 0 and the deposit, {kes(gown.deposit)}.",
                              code="out_of_range")
    if amount < gown.deposit and not gown.damage_notes:
        raise ValidationError("Only a damaged gown's deposit is refunded in part; record the damage on return.",
                              code="not_damaged")
    retained_reason = text_within(retained_reason, limit=REASON_MAX_LENGTH, what="reason")
    if amount < gown.deposit and not retained_reason:
        raise ValidationError(f"Say why {kes(gown.deposit - amount)} of the deposit is kept.",
                              code="reason_required")
    gown.refunded_amount = amount
    gown.retained_reason = retained_reason if amount < gown.deposit else ""
    gown.deposit_status = D.REFUNDED if amount == gown.deposit else (D.RETAINED if amount == 0 else D.PART_REFUNDED)
    gown.deposit_settled_at, gown.deposit_settled_by = timezone.now(), acting_user
    reason = f"Deposit {gown.get_deposit_status_display().lower()}"
    if gown.retained_reason:
        reason += f": {kes(gown.deposit - amount)} kept ({gown.retained_reason})"
    return save_tracked(gown, user=acting_user, reason=reason)


@transaction.atomic
def gown_deposit_refund(*, gown: GownIssuance, acting_user, amount=None, retained_reason: str = "") -> GownIssuance:
    """Refund the deposit: in full by default; in part (or nothing) when the gown came back damaged,
    with the reason for what is kept. Refused: not a gown store clerk; the gown is not returned yet;
    the deposit was already settled; a damaged gown without an amount; an amount outside
    0..deposit; a partial refund for an undamaged gown; a partial refund without a reason.
    Locks the gown's row: two refunds at once settle it once and the second is refused."""
    _require_store(acting_user)
    gown = GownIssuance.objects.select_for_update().get(pk=gown.pk)
    return _refund(gown, acting_user=acting_user, amount=amount, retained_reason=retained_reason)


@transaction.atomic
def gowns_deposit_refund(*, gown_ids, acting_user) -> BulkResult:
    """Refund the deposits of several returned gowns in full. Refused row by row: still out;
    already settled; damaged (a damaged gown's refund is decided on its own page). Locks the rows
    in id order."""
    _require_store(acting_user)
    result = BulkResult()
    ids = sorted(set(gown_ids))
    for gown in lock_rows(GownIssuance.objects.select_related("student", "deposit_settled_by"), ids, result,
                          what="gown"):
        try:
            if gown.damage_notes and gown.returned_at and gown.deposit_status == D.HELD:
                raise ValidationError(f"came back damaged ({gown.damage_notes}); refund it from its own page, "
                                      "with the amount and why the rest is kept")
            _refund(gown, acting_user=acting_user, amount=None, retained_reason="")
        except ValidationError as exc:
            result.refuse(gown.pk, _label(gown), " ".join(exc.messages))
        else:
            result.done.append(gown.pk)
    return result
