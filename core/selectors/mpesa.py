"""Which student an M-PESA account (the BillRefNumber a payer typed) names, for the Daraja callbacks.

Exact first: the registration number as the importers normalise it (`normalize_reg`: case and
spaces of any kind dropped, so "sce/cs/0001/2022 " is SCE/CS/0001/2022), one indexed lookup; then
the rule of the statement reconciliation (`core.imports.mpesa.ACCOUNT_RULE`: separators dropped
too, so "SCE CS 0001 2022" names that student when it is exactly one student's number). Only an
exact match is taken for certain; a clear typo or an ambiguous account is reported (by the same
AccountIndex the reconciliation uses), never recorded against a student by itself.
"""
from __future__ import annotations

from django.db.models import Value
from django.db.models.functions import Replace

from ..imports.balances import normalize_reg
from ..imports.mpesa import NO_MATCH, AccountIndex, AccountMatch, account_key
from ..models import Student


def account_student(account: str) -> Student | None:
    """The one student whose registration number the account is (exactly, as above), or None.
    Stored numbers hold only A–Z, 0–9 and "/" (REGISTRATION_NUMBER_RE), so the reconciliation's
    key of a stored number is the number without its slashes."""
    reg = normalize_reg(account or "")
    if not reg:
        return None
    student = Student.objects.filter(registration_number=reg).first()
    if student is not None:
        return student
    key = account_key(account)
    if not key or len(key) > 30:
        return None
    found = list(Student.objects.annotate(key=Replace("registration_number", Value("/"), Value("")))
                 .filter(key=key)[:2])
    return found[0] if len(found) == 1 else None


def account_match(account: str) -> tuple[AccountMatch, Student | None]:
    """The account's match by ACCOUNT_RULE and the student it names for certain (exact) or
    probably (a clear typo); (no match, None) for an empty account. An exact match costs one or
    two queries; anything else reads every student's number once (as a reconciliation does),
    which only an account that is no registration number pays."""
    student = account_student(account)
    if student is not None:
        return AccountMatch("exact", (student.pk,)), student
    if not account_key(account):
        return NO_MATCH, None
    index = AccountIndex(Student.objects.order_by().values_list("pk", "registration_number").iterator(chunk_size=5000))
    match = index.match(account)
    if match.kind == "exact":       # two numbers differing only in separators: cannot be told apart
        match = AccountMatch("ambiguous", match.student_ids)
    probable = Student.objects.filter(pk=match.student_id).first() if match.student_id else None
    return match, probable
