"""Finance clearance follows the money (workflow rule 5)."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from django.conf import settings
from django.db import transaction

from ..models import ClearanceApproval, ClearanceRequest, Department, Hold
from ._common import BulkResult, id_chunks, lock_requests

FINANCE_CODE = "FIN"
CLOSED = [ClearanceRequest.Status.COMPLETED, ClearanceRequest.Status.REVOKED]   # rule 4: left as they are


def finance_department() -> Department | None:
    return Department.objects.filter(code=FINANCE_CODE, is_active=True).first()


def finance_hold_reason(amount, reasons=()) -> str:
    """What the student reads on a finance rejection: the amount held, or the holds' own reasons
    when they carry no amount."""
    if amount:
        return f"Outstanding fee balance of KES {Decimal(amount):,.2f}"
    return "Finance hold: " + ("; ".join(sorted(set(reasons))) or "see the finance office")


@transaction.atomic
def finance_clearance_follow(*, student_ids: Iterable[int], acting_user, reason: str,
                             balance_import=None) -> tuple[BulkResult, BulkResult]:
    """When FINANCE_AUTO_CLEAR is on: for each student's open finance approval, approve it when no
    FIN hold is active, or reject it naming the amount held. Completed and revoked requests are left
    alone (rule 4). The decider is `acting_user`, and `balance_import` when an import caused it.
    Returns the (approve, reject) results; rows the rules refuse (e.g. an earlier stage still open)
    stay as they were. Locks the students' open requests before it reads anything."""
    from .approvals import approvals_approve, approvals_reject  # approvals → status; avoid a cycle

    approved, rejected = BulkResult(), BulkResult()
    fin = finance_department()
    if not settings.FINANCE_AUTO_CLEAR or fin is None:
        return approved, rejected
    ids = list(dict.fromkeys(student_ids))
    # the requests first (the domain's locking order), then read the holds and approvals: a hold
    # placed or released by a transaction still running is followed by that transaction's own call,
    # which waits here for this one, so the last to run sees every hold
    lock_requests(rid for chunk in id_chunks(ids) for rid in ClearanceApproval.objects.filter(
        department=fin, request__student_id__in=chunk).exclude(request__status__in=CLOSED).values_list(
        "request_id", flat=True))
    held = defaultdict(lambda: Decimal("0"))
    held_reasons = defaultdict(list)
    held_students = set()
    open_approvals = []
    for chunk in id_chunks(ids):
        for student_id, amount, why in Hold.objects.filter(department=fin, status=Hold.Status.ACTIVE,
                                                           student_id__in=chunk).values_list("student_id", "amount",
                                                                                             "reason"):
            held_students.add(student_id)
            held[student_id] += amount or 0
            held_reasons[student_id].append(why)
        open_approvals.extend(
            ClearanceApproval.objects.filter(department=fin, request__student_id__in=chunk)
            .exclude(request__status__in=CLOSED).values_list("pk", "request__student_id", "status", "reason"))
    to_approve, reject_reason = [], {}
    S = ClearanceApproval.Status
    for pk, student_id, status, current_reason in open_approvals:
        if student_id in held_students:
            text = finance_hold_reason(held[student_id], held_reasons[student_id])
            if status in (S.PENDING, S.APPROVED) or (status == S.REJECTED and current_reason != text):
                reject_reason[pk] = text
        elif status in (S.PENDING, S.REJECTED):
            to_approve.append(pk)
    if to_approve:
        approved = approvals_approve(approval_ids=to_approve, acting_user=acting_user, system=True,
                                     balance_import=balance_import, reason_for_history=reason)
    if reject_reason:
        rejected = approvals_reject(approval_ids=list(reject_reason), reason=reject_reason, acting_user=acting_user,
                                    system=True, balance_import=balance_import, reason_for_history=reason)
    return approved, rejected
