"""Reconciling an M-PESA Pay Bill statement with the payments recorded here.

Each statement line is matched by its receipt number (the M-PESA code) to the recorded M-PESA
payment with that `transaction_code`:
- matched, same amount, not verified yet → verified (one `payments_verify` call for all of them);
- matched, same amount, already verified → listed as such;
- matched, different amount → reported, not verified (someone must look);
- no payment recorded → listed with the student the `A/C No.` most likely means: the student with
  exactly that registration number (upper-case, no spaces), else the closest registration number
  (difflib), else none.
Recorded M-PESA payments that are not verified, were paid within the statement's days and have no
line in it are listed too: the money may not have arrived.
"""
from __future__ import annotations

import datetime
import difflib
import os
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..imports.balances import RowError
from ..imports.mpesa import MAX_STATEMENT_BYTES, ImportFileError, StatementLine, parse_mpesa_statement
from ..models import Payment, Student, normalize_registration_number
from ._common import BulkResult, chunked
from .payments import payments_verify

CLOSE_MATCH_CUTOFF = 0.8
LOOKUP_CHUNK = 2000


@dataclass
class UnrecordedLine:
    line: StatementLine
    student: Student | None
    match: str                       # "exact", "close" or "none"


@dataclass
class Mismatch:
    line: StatementLine
    payment: Payment


@dataclass
class ReconcileResult:
    file_name: str
    lines_read: int
    period: tuple[datetime.datetime, datetime.datetime] | None
    verified: list[Payment] = field(default_factory=list)            # verified now
    already_verified: list[Payment] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    verify_result: BulkResult = field(default_factory=BulkResult)    # what payments_verify did and refused
    unrecorded: list[UnrecordedLine] = field(default_factory=list)
    missing: list[Payment] = field(default_factory=list)             # recorded, unverified, not on the statement
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0


def _read(file) -> tuple[bytes, str]:
    if isinstance(file, (bytes, bytearray)):
        return bytes(file), "statement.csv"
    name = os.path.basename(getattr(file, "name", "") or "statement.csv")
    size = getattr(file, "size", None)
    if size is not None and size > MAX_STATEMENT_BYTES:
        raise ImportFileError(f"The file is {size / 1024 / 1024:.1f} MB; the limit is "
                              f"{MAX_STATEMENT_BYTES // 1024 // 1024} MB. Export a shorter period.", code="too_big")
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(MAX_STATEMENT_BYTES + 1)
    return (data.encode("utf-8") if isinstance(data, str) else data), name


def _likely_students(accounts: list[str]) -> dict[str, tuple[Student | None, str]]:
    """A/C No. as typed → (student, "exact" | "close" | "none")."""
    normalized = {a: normalize_registration_number(a) for a in accounts}
    wanted = sorted({n for n in normalized.values() if n})
    exact = {}
    for chunk in chunked(wanted, LOOKUP_CHUNK):
        exact.update({s.registration_number: s for s in Student.objects.filter(registration_number__in=chunk)})
    guesses: dict[str, str] = {}
    rest = [n for n in wanted if n not in exact]
    if rest:
        every = list(Student.objects.values_list("registration_number", flat=True).order_by())
        for n in rest:
            close = difflib.get_close_matches(n, every, n=1, cutoff=CLOSE_MATCH_CUTOFF)
            if close:
                guesses[n] = close[0]
    close_students = {s.registration_number: s for s in
                      Student.objects.filter(registration_number__in=set(guesses.values()))}
    out = {}
    for account, n in normalized.items():
        if n in exact:
            out[account] = (exact[n], "exact")
        elif n in guesses and guesses[n] in close_students:
            out[account] = (close_students[guesses[n]], "close")
        else:
            out[account] = (None, "none")
    return out


def payments_reconcile_statement(*, file, acting_user) -> ReconcileResult:
    """Read an M-PESA Pay Bill statement (CSV) and reconcile it with the recorded M-PESA payments
    (see the module's docstring); the matched unverified ones with the same amount are verified.
    Refused (ValidationError, nothing changed): not allowed to verify payments; the file cannot be
    read as a statement (empty, not CSV, no header row, nothing paid in)."""
    if acting_user is None or not acting_user.has_perm("core.change_payment"):
        raise ValidationError("Only finance officers can reconcile M-PESA statements.", code="forbidden")
    data, name = _read(file)
    parsed = parse_mpesa_statement(data)
    result = ReconcileResult(file_name=name, lines_read=len(parsed.lines), period=parsed.period,
                             errors=parsed.errors, skipped=parsed.skipped)
    codes = [line.receipt for line in parsed.lines]
    by_code: dict[str, Payment] = {}
    for chunk in chunked(codes, LOOKUP_CHUNK):
        by_code.update({p.transaction_code: p for p in Payment.objects.filter(
            method=Payment.Method.MPESA, transaction_code__in=chunk).select_related("student", "verified_by")})
    to_verify: list[Payment] = []
    unrecorded: list[StatementLine] = []
    for line in parsed.lines:
        payment = by_code.get(line.receipt)
        if payment is None:
            unrecorded.append(line)
        elif payment.amount != line.amount:
            result.mismatched.append(Mismatch(line, payment))
        elif payment.is_verified:
            result.already_verified.append(payment)
        else:
            to_verify.append(payment)
    if to_verify:
        result.verify_result = payments_verify(payment_ids=[p.pk for p in to_verify], acting_user=acting_user,
                                         reason=f"M-PESA statement {name} reconciled")
        done = set(result.verify_result.done)
        verified = {p.pk: p for p in Payment.objects.filter(pk__in=done).select_related("student", "verified_by")}
        result.verified = [verified[p.pk] for p in to_verify if p.pk in verified]
    if unrecorded:
        likely = _likely_students([line.account for line in unrecorded])
        result.unrecorded = [UnrecordedLine(line, *likely[line.account]) for line in unrecorded]
    if parsed.period is not None:
        start, end = (timezone.localtime(t).date() for t in parsed.period)
        tz = timezone.get_current_timezone()
        since = datetime.datetime.combine(start, datetime.time.min, tzinfo=tz)
        until = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
        on_statement = set(codes)
        result.missing = [p for p in Payment.objects.filter(
            method=Payment.Method.MPESA, verified_at__isnull=True, paid_at__gte=since, paid_at__lt=until,
        ).select_related("student").order_by("paid_at", "pk") if p.transaction_code not in on_statement]
    return result
