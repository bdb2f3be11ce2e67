"""Gowns (workflow rule 6): issued only to cleared students; deposits refunded only after return."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..history import save_tracked
from ..models import ClearanceRequest, GownIssuance, Student
from ._common import text_within

D = GownIssuance.DepositStatus


@transaction.atomic
def gown_issue(*, student: Student, gown_code: str, size: str, expected_return_on: date, acting_user,
               deposit=Decimal("2000")) -> GownIssuance:
    """Issue a gown. Refused: the student's clearance is not completed (GOWN_REQUIRES_COMPLETED);
    the student already has a gown out; this gown is out with someone else; a negative deposit;
    a return date in the past."""
    gown_code = (gown_code or "").strip().upper()
    if not gown_code:
        raise ValidationError("Give the gown's code.", code="no_code")
    if settings.GOWN_REQUIRES_COMPLETED and not ClearanceRequest.objects.filter(
            student=student, status=ClearanceRequest.Status.COMPLETED).exists():
        raise ValidationError(f"{student.registration_number} is not cleared yet; a gown is issued only after "
                              "every office has cleared the student.", code="not_cleared")
    if GownIssuance.objects.filter(student=student, returned_at__isnull=True).exists():
        raise ValidationError(f"{student.registration_number} already has a gown that has not been returned.",
                              code="already_out")
    if GownIssuance.objects.filter(gown_code=gown_code, returned_at__isnull=True).exists():
        raise ValidationError(f"Gown {gown_code} is out with another student.", code="gown_out")
    if Decimal(deposit) < 0:
        raise ValidationError("The deposit cannot be negative.", code="negative")
    if expected_return_on < timezone.localdate():
        raise ValidationError("The expected return date is in the past.", code="past")
    gown = GownIssuance(student=student, gown_code=gown_code, size=size, expected_return_on=expected_return_on,
                        deposit=deposit, issued_by=acting_user)
    gown.full_clean(exclude=["student"])
    return save_tracked(gown, user=acting_user, reason=f"Gown {gown_code} issued")


@transaction.atomic
def gown_return(*, gown: GownIssuance, acting_user, damage_notes: str = "") -> GownIssuance:
    """Record a gown's return (with damage notes if any). Refused: already returned."""
    damage_notes = text_within(damage_notes, limit=GownIssuance._meta.get_field("damage_notes").max_length,
                               what="damage note")
    gown = GownIssuance.objects.select_for_update().get(pk=gown.pk)
    if gown.returned_at:
        raise ValidationError(f"Gown {gown.gown_code} was already returned on {gown.returned_at:%d %b %Y}.",
                              code="returned")
    gown.returned_at = timezone.now()
    gown.damage_notes = damage_notes
    return save_tracked(gown, user=acting_user, reason="Gown returned" + (" damaged" if gown.damage_notes else ""))


@transaction.atomic
def gown_deposit_refund(*, gown: GownIssuance, acting_user, amount=None) -> GownIssuance:
    """Refund the deposit: in full by default; in part (or nothing) when the gown came back damaged.
    Refused: not returned yet; already settled; a damaged gown without an amount; an amount outside
    0..deposit; a partial refund for an undamaged gown."""
    gown = GownIssuance.objects.select_for_update().get(pk=gown.pk)
    if not gown.returned_at:
        raise ValidationError("The deposit is refunded only after the gown is returned.", code="not_returned")
    if gown.deposit_status != D.HELD:
        raise ValidationError(f"This deposit was already settled ({gown.get_deposit_status_display().lower()}).",
                              code="settled")
    if amount is None:
        if gown.damage_notes:
            raise ValidationError("The gown came back damaged: say how much of the deposit to refund.",
                                  code="amount_required")
        amount = gown.deposit
    amount = Decimal(amount)
    if amount < 0 or amount > gown.deposit:
        raise ValidationError(f"The refund must be between KES 0 and the deposit, KES {gown.deposit:,.2f}.",
                              code="out_of_range")
    if amount < gown.deposit and not gown.damage_notes:
        raise ValidationError("Only a damaged gown's deposit is refunded in part; record the damage on return.",
                              code="not_damaged")
    gown.refunded_amount = amount
    gown.deposit_status = D.REFUNDED if amount == gown.deposit else (D.RETAINED if amount == 0 else D.PART_REFUNDED)
    return save_tracked(gown, user=acting_user, reason=f"Deposit {gown.get_deposit_status_display().lower()}")
