"""Finance clearance follows the money (workflow rule 5)."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..bulk_load import memo
from ..history import bulk_update_tracked
from ..models import ClearanceApproval, ClearanceRequest, Department, Hold, Notification
from ._common import BulkResult, gc_paused, id_chunks
from .notifications import notifications_send
from .status import requests_refresh_status

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


def _lock_open_requests(fin, student_ids) -> list[int]:
    """Lock the open requests (ascending ids) of these students that have a finance item: one
    statement per chunk, the domain's locking order (requests before their approvals)."""
    locked = []
    for chunk in id_chunks(student_ids):
        locked.extend(ClearanceRequest.objects.select_for_update(of=("self",))
                      .filter(student_id__in=chunk, approvals__department=fin).exclude(status__in=CLOSED)
                      .order_by("pk").values_list("pk", flat=True))
    return locked


def _earlier_stage_open(fin, request_ids) -> dict[int, list[str]]:
    """For requests with an office of an earlier stage than finance's not yet cleared: those
    offices ("LIB (pending)"); empty when finance is in the first stage (no query then)."""
    earlier = list(Department.objects.filter(is_active=True, stage__lt=fin.stage).values_list("pk", flat=True))
    blocked = defaultdict(list)
    if not earlier:
        return blocked
    for chunk in id_chunks(request_ids):
        for request_id, code, status in (ClearanceApproval.objects.filter(request_id__in=chunk,
                                                                          department_id__in=earlier)
                                         .exclude(status__in=ClearanceApproval.CLEARED)
                                         .values_list("request_id", "department__code", "status")):
            blocked[request_id].append(f"{code} ({status})")
    return blocked


@transaction.atomic
def finance_clearance_follow(*, student_ids: Iterable[int], acting_user, reason: str,
                             balance_import=None) -> tuple[BulkResult, BulkResult]:
    """When FINANCE_AUTO_CLEAR is on: for each student's open finance approval, approve it when no
    FIN hold is active, or reject it naming the amount held. Completed and revoked requests are left
    alone (rule 4). The decider is `acting_user`, and `balance_import` when an import caused it.
    Returns the (approve, reject) results; an approve the stage rule refuses (an earlier stage
    still open) is reported and the row stays as it is.

    The system deciding by rule, on plain rows: a constant number of statements per chunk of
    students whatever their number (graduation season decides tens of thousands at once), one
    historical row per decision, the students notified after commit. Locks the students' open
    requests before it reads anything: a hold placed or released by a transaction still running is
    followed by that transaction's own call, which waits here for this one, so the last to run
    sees every hold."""
    approved, rejected = BulkResult(), BulkResult()
    fin = finance_department()
    if not settings.FINANCE_AUTO_CLEAR or fin is None:
        return approved, rejected
    ids = list(dict.fromkeys(student_ids))
    request_ids = _lock_open_requests(fin, ids)
    if not request_ids:
        return approved, rejected
    held = defaultdict(list)
    for chunk in id_chunks(ids):
        for student_id, amount, why in Hold.objects.filter(department=fin, status=Hold.Status.ACTIVE,
                                                           student_id__in=chunk).values_list("student_id", "amount",
                                                                                             "reason"):
            held[student_id].append((amount, why))
    rows = [row for chunk in id_chunks(request_ids)
            for row in ClearanceApproval.objects.filter(department=fin, request_id__in=chunk).values_list(
                "pk", "request_id", "request__student_id", "request__student__registration_number",
                "request__student__user_id", "status", "reason")]
    blocked = _earlier_stage_open(fin, request_ids)
    S = ClearanceApproval.Status
    reason_of = memo(lambda holds: finance_hold_reason(sum((a or 0) for a, _ in holds), [w for _, w in holds]))
    now = timezone.now()
    decider = dict(decided_by_id=getattr(acting_user, "pk", None), decided_by_import_id=getattr(balance_import, "pk", None),
                   decided_at=now)
    approve, reject, notify = [], [], []
    for pk, request_id, student_id, reg, user_id, status, current_reason in rows:
        holds = held.get(student_id)
        if holds:
            text = reason_of(tuple(holds))
            if status in (S.PENDING, S.APPROVED) or (status == S.REJECTED and current_reason != text):
                reject.append(dict(id=pk, status=S.REJECTED, reason=text, **decider))
                rejected.done.append(pk)
                notify.append((user_id, S.REJECTED, text))
        elif status in (S.PENDING, S.REJECTED):
            if blocked.get(request_id):
                approved.refuse(pk, f"{reg} ({fin.code})",
                                "an earlier stage is still open: " + ", ".join(sorted(blocked[request_id])))
                continue
            approve.append(dict(id=pk, status=S.APPROVED, reason="", **decider))
            approved.done.append(pk)
            notify.append((user_id, S.APPROVED, ""))
    fields = ["status", "reason", "decided_by", "decided_by_import", "decided_at"]
    with gc_paused():
        bulk_update_tracked(approve, ClearanceApproval, fields, user=acting_user, reason=reason)
        bulk_update_tracked(reject, ClearanceApproval, fields, user=acting_user, reason=reason)
    if approve or reject:
        decided = {d["id"] for d in approve} | {d["id"] for d in reject}
        requests_refresh_status({request_id for pk, request_id, *_ in rows if pk in decided},
                                acting_user=acting_user, reason=reason)
    notifications_send([
        dict(user_id=user_id, kind=Notification.Kind.APPROVED if status == S.APPROVED else Notification.Kind.REJECTED,
             title=f"{fin.code}: {S(status).label.lower()}",
             message=f"{fin.name} {S(status).label.lower()} your clearance." + (f" Reason: {text}" if text else ""),
             link="/student/")
        for user_id, status, text in notify if user_id])
    return approved, rejected
