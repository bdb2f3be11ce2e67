"""M-PESA Daraja C2B callbacks: validation (may this Pay Bill payment go through?) and confirmation
(it went through: record it).

Daraja posts JSON with TransactionType, TransID, TransTime (YYYYMMDDHHmmss, Nairobi time),
TransAmount, BusinessShortCode, BillRefNumber (the account the payer typed), InvoiceNumber,
OrgAccountBalance, ThirdPartyTransID, MSISDN, FirstName, MiddleName, LastName. Validation answers
`{"ResultCode": 0, "ResultDesc": "Accepted"}` or a rejection with one of Daraja's documented codes
(C2B00011 invalid MSISDN, C2B00012 invalid account number, C2B00013 invalid amount, C2B00016 other
error). Fields Daraja may add later are ignored, not refused.

A confirmation is kept whatever it names (`MpesaConfirmation`: Daraja sends confirmations even
where validation is off, and the money has moved): an account that is one student's registration
number records the payment, verified, for that student; anything else is listed for finance in
/finance/ → M-PESA confirmations, to record by hand. The history of the payment names M-PESA and
the transaction ("system: …": no person decided it). A verified payment changes nothing else by
itself here, as when an officer verifies one: releasing the FIN hold a payment covers stays the
finance officer's step ("Release FIN hold", core/services/holds.py: holds_release_paid), and the
next balance import is authoritative.
"""
from __future__ import annotations

import datetime
import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..history import as_system
from ..models import MpesaConfirmation, Payment, Student
from ..selectors.mpesa import account_match, account_student
from .payments import MAX_AMOUNT, normalize_code, payment_record, payments_verify

log = logging.getLogger(__name__)

NAIROBI = ZoneInfo("Africa/Nairobi")       # Daraja's TransTime is Nairobi time, whatever TIME_ZONE says
ACCEPTED_CODE = 0
INVALID_MSISDN = "C2B00011"
INVALID_ACCOUNT = "C2B00012"
INVALID_AMOUNT = "C2B00013"
OTHER_ERROR = "C2B00016"
CODE_RE = re.compile(r"^[A-Z0-9]{10}$")
TIME_RE = re.compile(r"^\d{14}$")
MAX_ACCOUNT = 100
C = MpesaConfirmation


class C2BPayloadError(ValidationError):
    """The body is not a Daraja C2B callback: what is wrong, by field (`message_dict`), and the
    Daraja code that fits it best (`result_code`)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        if "TransAmount" in errors:
            self.result_code = INVALID_AMOUNT
        elif "BillRefNumber" in errors:
            self.result_code = INVALID_ACCOUNT
        elif "MSISDN" in errors:
            self.result_code = INVALID_MSISDN
        else:
            self.result_code = OTHER_ERROR


@dataclass(frozen=True)
class C2BTransaction:
    trans_id: str
    trans_time: datetime.datetime
    amount: Decimal
    bill_ref: str
    msisdn: str
    payer_name: str
    short_code: str
    transaction_type: str


def _text(value, field: str, errors: dict, *, numbers: bool = False) -> str:
    """A string field (a number too where Daraja's samples send one); anything else is an error."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    errors.setdefault(field, []).append("must be a string")
    return ""


def _amount(value, errors: dict) -> Decimal | None:
    if value is None or value == "":
        errors.setdefault("TransAmount", []).append("is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errors.setdefault("TransAmount", []).append("must be an amount such as \"200.00\"")
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        errors.setdefault("TransAmount", []).append(f"“{str(value)[:20]}” is not an amount")
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        errors.setdefault("TransAmount", []).append(f"“{str(value)[:20]}” is not an amount in shillings and cents")
    elif amount <= 0:
        errors.setdefault("TransAmount", []).append("must be more than zero")
    elif amount > MAX_AMOUNT:
        errors.setdefault("TransAmount", []).append(f"KES {amount:,.2f} is more than any fee")
    else:
        return amount.quantize(Decimal("0.01"))
    return None


def parse_c2b(payload) -> C2BTransaction:
    """The transaction a Daraja C2B body describes. Refused (C2BPayloadError, by field): not a JSON
    object; TransID missing or not an M-PESA code (10 letters/digits); TransTime missing or not
    YYYYMMDDHHmmss; TransAmount missing, not an amount, not more than zero or absurd;
    BillRefNumber missing (it may be empty), not a string or longer than 100 characters; a field
    of the wrong type."""
    if not isinstance(payload, dict):
        raise C2BPayloadError({"non_field_errors": ["The body must be a JSON object (a Daraja C2B callback)."]})
    errors: dict[str, list[str]] = {}
    raw_id = _text(payload.get("TransID"), "TransID", errors)
    trans_id = normalize_code(raw_id)
    if "TransID" not in errors and not CODE_RE.match(trans_id):
        errors["TransID"] = ["is required" if not raw_id else f"“{raw_id[:20]}” is not an M-PESA code (10 letters or digits)"]
    raw_time = _text(payload.get("TransTime"), "TransTime", errors, numbers=True)
    trans_time = None
    if "TransTime" not in errors:
        if not TIME_RE.match(raw_time):
            errors["TransTime"] = ["is required" if not raw_time else f"“{raw_time[:20]}” is not YYYYMMDDHHmmss"]
        else:
            try:
                trans_time = datetime.datetime.strptime(raw_time, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
            except ValueError:
                errors["TransTime"] = [f"“{raw_time}” is not a date and time"]
    amount = _amount(payload.get("TransAmount"), errors)
    if "BillRefNumber" not in payload:
        errors["BillRefNumber"] = ["is required (it may be empty)"]
    bill_ref = _text(payload.get("BillRefNumber"), "BillRefNumber", errors, numbers=True)
    if len(bill_ref) > MAX_ACCOUNT:
        errors.setdefault("BillRefNumber", []).append(f"is longer than {MAX_ACCOUNT} characters")
    msisdn = _text(payload.get("MSISDN"), "MSISDN", errors, numbers=True)
    names = [_text(payload.get(k), k, errors) for k in ("FirstName", "MiddleName", "LastName")]
    short_code = _text(payload.get("BusinessShortCode"), "BusinessShortCode", errors, numbers=True)
    transaction_type = _text(payload.get("TransactionType"), "TransactionType", errors)
    for k in ("InvoiceNumber", "OrgAccountBalance", "ThirdPartyTransID"):
        _text(payload.get(k), k, errors, numbers=True)
    if errors:
        raise C2BPayloadError(errors)
    return C2BTransaction(trans_id=trans_id, trans_time=trans_time, amount=amount, bill_ref=bill_ref,
                          # v1 sends a 64-character hash, v2 a masked number: kept as far as the field goes
                          msisdn=msisdn[:20], payer_name=" ".join(n for n in names if n)[:255],
                          short_code=short_code[:20], transaction_type=transaction_type[:40])


@dataclass(frozen=True)
class C2BValidation:
    accepted: bool
    result_code: int | str
    detail: str
    student: Student | None = None

    @property
    def answer(self) -> dict:
        """The body Daraja expects back."""
        return {"ResultCode": self.result_code, "ResultDesc": "Accepted" if self.accepted else "Rejected"}


def mpesa_c2b_validate(*, payload) -> C2BValidation:
    """May this payment go through? Accepted when the account (BillRefNumber) is one student's
    registration number, normalised as the importers do (core/selectors/mpesa.py: account_student);
    otherwise rejected with C2B00012 (invalid account number), so the payer is told at once and can
    retype it. Refused (C2BPayloadError): the body is not a C2B callback (parse_c2b). Writes nothing."""
    tx = parse_c2b(payload)
    student = account_student(tx.bill_ref)
    if student is None:
        return C2BValidation(False, INVALID_ACCOUNT, f"“{tx.bill_ref[:40]}” is no student's registration number")
    return C2BValidation(True, ACCEPTED_CODE, f"{student.registration_number}", student)


@dataclass(frozen=True)
class C2BConfirmResult:
    confirmation: MpesaConfirmation
    replay: bool = False            # this TransID had come before: nothing more was recorded

    @property
    def answer(self) -> dict:
        """The body Daraja expects back: a confirmation kept (or kept before) is accepted."""
        return {"ResultCode": ACCEPTED_CODE, "ResultDesc": "Accepted"}


def _where(tx: C2BTransaction) -> str:
    payer = " ".join(x for x in (tx.payer_name, tx.msisdn) if x)
    return (f"M-PESA confirmation {tx.trans_id} (account “{tx.bill_ref[:40]}”"
            + (f", from {payer}" if payer else "") + ")")


def _verify(payment: Payment, tx: C2BTransaction, conf: MpesaConfirmation) -> None:
    """An M-PESA payment recorded with this code before the confirmation came (by hand, or from a
    statement): as a reconciliation does, the same amount and not verified → verified; a different
    amount is listed for someone to look at, never verified."""
    conf.match, conf.payment, conf.student_id = C.Match.PAYMENT, payment, payment.student_id
    if payment.amount != tx.amount:
        conf.outcome = C.Outcome.MISMATCH
        conf.detail = f"{payment.transaction_code} is recorded with KES {payment.amount:,.2f}; M-PESA says KES {tx.amount:,.2f}"
    elif payment.is_verified:
        conf.outcome = C.Outcome.ALREADY_VERIFIED
    else:
        payments_verify(payment_ids=[payment.pk], acting_user=None,
                        reason=as_system(f"Verified by {_where(tx)}")).raise_if_refused("payment")
        conf.outcome = C.Outcome.VERIFIED


def _recorded(code: str) -> Payment | None:
    return (Payment.objects.select_for_update(of=("self",)).filter(method=Payment.Method.MPESA, transaction_code=code)
            .first())


@transaction.atomic
def mpesa_c2b_confirm(*, payload, source_ip: str | None = None) -> C2BConfirmResult:
    """Record what a Daraja confirmation says was paid (see the module's docstring), once per
    TransID. The confirmation is saved first: its unique TransID is the referee, so a replay, or a
    second post of the same transaction running at the same time (which waits on that unique index
    until this transaction ends), records nothing more and answers success. Then, locking the
    payment with that code if there is one:
    - a payment with the code exists: the same amount and unverified → verified; already verified
      → nothing; another amount → listed as "amount differs", nothing verified;
    - none, and the account is one student's registration number (account_match: exact) → the
      payment is recorded for that student, paid at TransTime, from MSISDN, and verified; a payment
      recorded by hand meanwhile with the same code is treated as above;
    - none, and the account names no student for certain (a typo, ambiguous, nothing) → listed as
      unmatched with the probable student or the candidates, nothing recorded.
    Refused (C2BPayloadError, nothing saved): the body is not a C2B callback (parse_c2b)."""
    tx = parse_c2b(payload)
    seen = C.objects.filter(trans_id=tx.trans_id).first()
    if seen is not None:
        return C2BConfirmResult(seen, replay=True)
    conf = C(trans_id=tx.trans_id, trans_time=tx.trans_time, amount=tx.amount, bill_ref=tx.bill_ref,
             msisdn=tx.msisdn, payer_name=tx.payer_name, short_code=tx.short_code,
             transaction_type=tx.transaction_type, source_ip=source_ip, payload=payload,
             outcome=C.Outcome.UNMATCHED, match=C.Match.NONE)
    try:
        with transaction.atomic():
            conf.save()
    except IntegrityError:
        return C2BConfirmResult(C.objects.get(trans_id=tx.trans_id), replay=True)
    payment = _recorded(tx.trans_id)
    if payment is None:
        match, student = account_match(tx.bill_ref)
        if match.kind == "exact":
            try:
                with transaction.atomic():
                    payment = payment_record(student=student, amount=tx.amount, method=Payment.Method.MPESA,
                                             transaction_code=tx.trans_id, phone=tx.msisdn, paid_at=tx.trans_time,
                                             acting_user=None, reason=as_system(f"Recorded from {_where(tx)}"))
            except (IntegrityError, ValidationError):
                # recorded by hand meanwhile (the unique code; payment_record's own duplicate check)
                payment = _recorded(tx.trans_id)
                if payment is None:
                    raise
                _verify(payment, tx, conf)
            else:
                payments_verify(payment_ids=[payment.pk], acting_user=None,
                                reason=as_system(f"Verified by {_where(tx)}")).raise_if_refused("payment")
                conf.outcome, conf.match, conf.payment, conf.student = C.Outcome.RECORDED, C.Match.EXACT, payment, student
        else:
            conf.match = match.kind
            conf.student = student
            conf.candidates = list(match.student_ids) if match.kind == "ambiguous" else []
            conf.detail = {"typo": f"probably {student.registration_number if student else '?'}: {match.how}",
                           "ambiguous": f"as close to {len(match.student_ids)} students' registration numbers",
                           }.get(match.kind, "no student's registration number, nor a clear typo of one")[:255]
    else:
        _verify(payment, tx, conf)
    conf.save(update_fields=["outcome", "match", "payment", "student", "candidates", "detail"])
    if conf.outcome in (C.Outcome.UNMATCHED, C.Outcome.MISMATCH):
        log.warning("M-PESA confirmation %s kept for finance: %s", tx.trans_id, conf.get_outcome_display())
    return C2BConfirmResult(conf)
