"""Reconciling an M-PESA Pay Bill statement with the payments recorded here.

Each statement line is matched by its receipt number (the M-PESA code) to the recorded M-PESA
payment with that `transaction_code`:
- matched, same amount, not verified yet → verified (one `payments_verify` call for all of them);
- matched, same amount, already verified → listed as such;
- matched, different amount → reported, not verified (someone must look);
- no payment recorded → listed with the student its `A/C No.` names by the rule of
  `core.imports.mpesa.ACCOUNT_RULE` (exact, a clear typo of one number, ambiguous, or none). From
  such a line a finance officer can record and verify the payment in one click
  (`statement_line_record_and_verify`), which takes every value from the saved line.
Recorded M-PESA payments that are not verified, were paid within the statement's days and have no
line in it are listed too: the money may not have arrived.

Each reconciliation is saved (`StatementReconciliation`, with one `ReconciliationLine` per line
and the statement file stored under a random name): its page and downloads are made from that.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import files
from ..history import save_tracked
from ..imports.balances import RowError
from ..imports.mpesa import (MAX_STATEMENT_BYTES, NO_MATCH, AccountIndex, AccountMatch, ImportFileError,
                             StatementLine, parse_mpesa_statement)
from ..models import Payment, ReconciliationLine, StatementReconciliation, Student
from ..money import kes
from ._common import BulkResult, chunked
from .payments import normalize_code, payment_record, payments_verify

LOOKUP_CHUNK = 2000
LINE_BATCH = 2000
L = ReconciliationLine
CERTAIN = (L.Match.EXACT, L.Match.TYPO)


@dataclass
class UnrecordedLine:
    line: StatementLine
    student: Student | None
    match: str                       # "exact", "typo", "ambiguous" or "none"
    candidates: tuple[int, ...] = ()  # ambiguous: the students it may be
    how: str = ""                    # typo: what differs


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
    reconciliation: StatementReconciliation | None = None            # what was saved
    lines: list[StatementLine] = field(default_factory=list)         # every line read, in order


def _read(file) -> tuple[bytes, str]:
    if isinstance(file, (bytes, bytearray)):
        return bytes(file), "statement.csv"
    name = files.original_name(file, "statement.csv") or "statement.csv"
    size = getattr(file, "size", None)
    if size is not None and size > MAX_STATEMENT_BYTES:
        raise ImportFileError(f"The file is {size / 1024 / 1024:.1f} MB; the limit is "
                              f"{MAX_STATEMENT_BYTES // 1024 // 1024} MB. Export a shorter period.", code="too_big")
    if hasattr(file, "seek"):
        file.seek(0)
    data = file.read(MAX_STATEMENT_BYTES + 1)
    return (data.encode("utf-8") if isinstance(data, str) else data), name


def account_matches(accounts: list[str]) -> dict[str, AccountMatch]:
    """A/C No. as typed → the match by ACCOUNT_RULE, against every student's registration number
    (read once, as plain (id, number) pairs: two queries per statement however many lines)."""
    if not accounts:
        return {}
    index = AccountIndex(Student.objects.order_by().values_list("pk", "registration_number").iterator(chunk_size=5000))
    return {a: index.match(a) for a in dict.fromkeys(accounts)}


def _students(ids) -> dict[int, Student]:
    found = {}
    for chunk in chunked(sorted(set(ids)), LOOKUP_CHUNK):
        found.update({s.pk: s for s in Student.objects.filter(pk__in=chunk)})
    return found


@transaction.atomic
def payments_reconcile_statement(*, file, acting_user) -> ReconcileResult:
    """Read an M-PESA Pay Bill statement (CSV) and reconcile it with the recorded M-PESA payments
    (see the module's docstring); the matched unverified ones with the same amount are verified,
    and the whole result is saved with the file. Refused (ValidationError, nothing changed or
    saved): not allowed to verify payments; the file cannot be read as a statement (empty, not
    CSV, no header row, nothing paid in)."""
    if acting_user is None or not acting_user.has_perm("core.change_payment"):
        raise ValidationError("Only finance officers can reconcile M-PESA statements.", code="forbidden")
    data, name = _read(file)
    parsed = parse_mpesa_statement(data)
    result = ReconcileResult(file_name=name, lines_read=len(parsed.lines), period=parsed.period,
                             errors=parsed.errors, skipped=parsed.skipped, lines=parsed.lines)
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
    matches = account_matches([line.account for line in unrecorded])
    named = _students(pk for m in matches.values() for pk in m.student_ids)
    for line in unrecorded:
        m = matches.get(line.account, NO_MATCH)
        result.unrecorded.append(UnrecordedLine(line, named.get(m.student_id), m.kind,
                                                m.student_ids if m.kind == "ambiguous" else (), m.how))
    if parsed.period is not None:
        start, end = (timezone.localtime(t).date() for t in parsed.period)
        tz = timezone.get_current_timezone()
        since = datetime.datetime.combine(start, datetime.time.min, tzinfo=tz)
        until = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
        on_statement = set(codes)
        result.missing = [p for p in Payment.objects.filter(
            method=Payment.Method.MPESA, verified_at__isnull=True, paid_at__gte=since, paid_at__lt=until,
        ).select_related("student").order_by("paid_at", "pk") if p.transaction_code not in on_statement]
    result.reconciliation = _save(result, data, payments=by_code, acting_user=acting_user)
    return result


def _save(result: ReconcileResult, data: bytes, *, payments: dict[str, Payment], acting_user) -> StatementReconciliation:
    """The result as a StatementReconciliation with its lines (one statement per LINE_BATCH lines)."""
    verified = {p.transaction_code for p in result.verified}
    lines = []

    def line_of(line: StatementLine, outcome, match, **extra):
        return ReconciliationLine(row=line.row, receipt=line.receipt, completed_at=line.completed_at,
                                  amount=line.amount, account=line.account[:255], phone=line.phone,
                                  outcome=outcome, match=match, **extra)
    paid = {m.line.receipt: m for m in result.mismatched}
    unrecorded = {u.line.receipt: u for u in result.unrecorded}
    # every line, in the statement's order; a verify refused (a race) stays "already verified"
    for line in result.lines:
        if line.receipt in unrecorded:
            u = unrecorded[line.receipt]
            lines.append(line_of(line, L.Outcome.UNRECORDED, u.match, student=u.student,
                                 candidates=list(u.candidates), match_detail=u.how[:200]))
        elif line.receipt in paid:
            p = paid[line.receipt].payment
            lines.append(line_of(line, L.Outcome.MISMATCH, L.Match.PAYMENT, student_id=p.student_id, payment=p))
        else:
            p = payments[line.receipt]
            outcome = L.Outcome.VERIFIED if line.receipt in verified else L.Outcome.ALREADY_VERIFIED
            lines.append(line_of(line, outcome, L.Match.PAYMENT, student_id=p.student_id, payment=p))
    counts = {k: sum(1 for x in lines if x.match == k) for k in L.Match.values}
    rec = StatementReconciliation(
        original_name=result.file_name[:255], sha256=hashlib.sha256(data).hexdigest(), created_by=acting_user,
        period_start=result.period[0] if result.period else None,
        period_end=result.period[1] if result.period else None,
        lines_total=len(lines), matched_count=counts[L.Match.PAYMENT] + counts[L.Match.EXACT] + counts[L.Match.TYPO],
        unmatched_count=counts[L.Match.NONE], ambiguous_count=counts[L.Match.AMBIGUOUS],
        verified_count=len(result.verified), mismatched_count=len(result.mismatched),
        already_verified_count=sum(1 for x in lines if x.outcome == L.Outcome.ALREADY_VERIFIED),
        skipped_count=result.skipped, errors=[e.as_dict() for e in result.errors],
        missing=[{"payment_id": p.pk, "code": p.transaction_code, "registration_number": p.student.registration_number,
                  "student": p.student.full_name, "amount": str(p.amount), "paid_at": p.paid_at.isoformat()}
                 for p in result.missing])
    rec.file.save(os.path.splitext(result.file_name)[0] + ".csv", ContentFile(data), save=False)  # random name
    save_tracked(rec, user=acting_user, reason=f"M-PESA statement {result.file_name} reconciled")
    for line in lines:
        line.reconciliation = rec
    ReconciliationLine.objects.bulk_create(lines, batch_size=LINE_BATCH)
    return rec


# --- record and verify one line -----------------------------------------------------------------

@transaction.atomic
def statement_line_record_and_verify(*, reconciliation_id: int, row: int, acting_user,
                                     seen_receipt: str | None = None) -> Payment:
    """Record the M-PESA payment of one line of a saved reconciliation and verify it: the student,
    amount, code, phone and time all come from the saved line (nothing from the page but which
    line), and the history of both steps names the statement. Locks the reconciliation, so two
    clicks on the same statement run one after the other.

    Refused (ValidationError, nothing written): not allowed to record and verify payments; no
    such reconciliation, or no line `row` in it; `seen_receipt` (what the page showed) is not the
    line's code (the form was changed); the code already has a payment (naming whose: a line
    recorded before, a replay, a payment recorded by hand); the line's student is not certain
    (ambiguous, no match, or that student is gone)."""
    if acting_user is None or not (acting_user.has_perm("core.add_payment")
                                   and acting_user.has_perm("core.change_payment")):
        raise ValidationError("Only finance officers can record and verify payments.", code="forbidden")
    rec = StatementReconciliation.objects.select_for_update().filter(pk=reconciliation_id).first()
    if rec is None:
        raise ValidationError("There is no such reconciliation.", code="not_found")
    line = rec.lines.select_related("student").filter(row=row).first()
    if line is None:
        raise ValidationError(f"{rec} has no line {row}; nothing was recorded.", code="no_line")
    if seen_receipt is not None and normalize_code(seen_receipt) != line.receipt:
        raise ValidationError(f"Line {row} of {rec.original_name} is {line.receipt}, not {seen_receipt[:20]}: the "
                              "form was changed. Nothing was recorded; use the button on the line itself.",
                              code="changed")
    existing = (Payment.objects.filter(method=Payment.Method.MPESA, transaction_code=line.receipt)
                .select_related("student").first())
    if existing is not None:
        state = "verified" if existing.is_verified else "not verified yet"
        raise ValidationError(f"{line.receipt} already has a payment: {existing.student.registration_number}, "
                              f"{kes(existing.amount)}, {state}. Nothing was recorded.", code="duplicate")
    if line.match not in CERTAIN or line.student is None:
        why = {L.Match.AMBIGUOUS: "it is as close to more than one student's registration number",
               L.Match.NONE: "it is no student's registration number, nor a clear typo of one"}.get(
            line.match, "that student is no longer in the system")
        raise ValidationError(f"The A/C No. of line {row} (“{line.account or 'empty'}”) does not say for certain "
                              f"whose payment this is: {why}. Record it by hand after checking with the payer.",
                              code="uncertain")
    where = f"M-PESA statement {rec.original_name} (reconciliation #{rec.pk}, line {row})"
    read_as = f"; A/C No. “{line.account}” read as {line.student.registration_number}" if line.match == L.Match.TYPO else ""
    try:
        with transaction.atomic():
            payment = payment_record(student=line.student, amount=line.amount, method=Payment.Method.MPESA,
                                     transaction_code=line.receipt, phone=line.phone, paid_at=line.completed_at,
                                     acting_user=acting_user, reason=f"Recorded from {where}{read_as}")
    except IntegrityError:
        # recorded meanwhile from another statement or by hand (the unique code): the same refusal
        raise ValidationError(f"{line.receipt} was recorded meanwhile; nothing more was recorded.",
                              code="duplicate") from None
    payments_verify(payment_ids=[payment.pk], acting_user=acting_user,
                    reason=f"Verified from {where}").raise_if_refused("payment")
    payment.refresh_from_db()
    return payment
