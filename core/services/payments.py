"""Payments: recording and verifying (M-PESA codes are checked for form and duplicates)."""
from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import files
from ..history import bulk_update_tracked, save_tracked
from ..models import FinanceRecord, Payment, Student, validate_mpesa_code
from ..money import kes
from ._common import BulkResult, bulk_service, lock_rows, require_reason

MAX_AMOUNT = Decimal("10000000")


def normalize_code(code: str) -> str:
    return "".join((code or "").split()).upper()


@transaction.atomic
def payment_record(*, student: Student, amount, method: str, transaction_code: str, acting_user,
                   phone: str = "", paid_at=None, receipt=None, reason: str = "Payment recorded") -> Payment:
    """Record a payment. Refused: amount not positive or absurd; an M-PESA code that is not 10
    letters/digits; a code already recorded for this method (naming whose); a receipt that is not
    a PDF, PNG or JPEG of at most 5 MB, by its content (core/files.py: an HTML or SVG page is
    refused, naming what it is). The receipt is stored under a random name; its own name is kept
    as the download name. `reason` is the history's (where the payment came from)."""
    if receipt is not None:
        files.validate_receipt(receipt)
    code = normalize_code(transaction_code)
    amount = Decimal(amount)
    if amount <= 0:
        raise ValidationError("A payment's amount must be more than zero.", code="amount")
    if amount > MAX_AMOUNT:
        raise ValidationError(f"{kes(amount)} is more than any fee; check the amount.", code="absurd")
    if method == Payment.Method.MPESA:
        validate_mpesa_code(code)
    elif not code:
        raise ValidationError("Give the transaction or receipt number.", code="code")
    duplicate = Payment.objects.filter(method=method, transaction_code=code).select_related("student").first()
    if duplicate:
        raise ValidationError(f"{code} is already recorded, for {duplicate.student.registration_number} "
                              f"({kes(duplicate.amount)}).", code="duplicate")
    payment = Payment(student=student, amount=amount, method=method, transaction_code=code, phone=phone,
                      paid_at=paid_at or timezone.now(), recorded_by=acting_user)
    if receipt is not None:
        payment.receipt_name = files.original_name(receipt, "receipt")
        payment.receipt.save(payment.receipt_name, receipt, save=False)
    return save_tracked(payment, user=acting_user, reason=reason)


@bulk_service
def payments_verify(*, payment_ids: Iterable[int], acting_user, reason: str = "") -> BulkResult:
    """Mark payments verified. Refused per row: unknown; already verified (naming by whom)."""
    ids = list(dict.fromkeys(payment_ids))
    result = BulkResult()
    payments = lock_rows(Payment.objects.select_related("verified_by"), ids, result, what="payment")
    now = timezone.now()
    todo = []
    for p in payments:
        if p.verified_at:
            result.refuse(p.pk, p.transaction_code, f"already verified by {p.verified_by} on {p.verified_at:%d %b %Y}")
        else:
            p.verified_at, p.verified_by = now, acting_user
            todo.append(p)
            result.done.append(p.pk)
    bulk_update_tracked(todo, Payment, ["verified_at", "verified_by"], user=acting_user,
                        reason=reason or "Payment verified")
    return result


def payment_verify_by_code(*, transaction_code: str, acting_user, method: str = Payment.Method.MPESA) -> Payment:
    """Verify the payment with this code. Refused: malformed code; no payment recorded with it;
    already verified."""
    code = normalize_code(transaction_code)
    if method == Payment.Method.MPESA:
        validate_mpesa_code(code)
    payment = Payment.objects.filter(method=method, transaction_code=code).first()
    if payment is None:
        raise ValidationError(f"No payment is recorded with the code {code}.", code="not_found")
    payments_verify(payment_ids=[payment.pk], acting_user=acting_user).raise_if_refused()
    payment.refresh_from_db()
    return payment


@bulk_service
def finance_records_set_graduation_fee_status(*, record_ids: Iterable[int], status: str, acting_user,
                                              reason: str = "") -> BulkResult:
    """Set the graduation fee status (unpaid, paid, waived) of finance records, with history.
    Refused: an unknown status; waiving without a reason; per row: unknown record; already in
    that status. Balances are not touched: they come from imports."""
    statuses = FinanceRecord.GraduationFeeStatus
    if status not in statuses.values:
        raise ValidationError(f"{status!r} is not a graduation fee status.", code="status")
    reason = (reason or "").strip()
    if status == statuses.WAIVED:
        reason = require_reason(reason, "waive a graduation fee")
    label = statuses(status).label.lower()
    ids = list(dict.fromkeys(record_ids))
    result = BulkResult()
    records = lock_rows(FinanceRecord.objects.select_related("student"), ids, result, what="finance record")
    now = timezone.now()
    todo = []
    for r in records:
        if r.graduation_fee_status == status:
            result.refuse(r.pk, r.student.registration_number, f"the graduation fee is already {label}")
        else:
            r.graduation_fee_status, r.updated_at = status, now
            todo.append(r)
            result.done.append(r.pk)
    bulk_update_tracked(todo, FinanceRecord, ["graduation_fee_status", "updated_at"], user=acting_user,
                        reason=f"Graduation fee marked {label}" + (f": {reason}" if reason else ""))
    return result
