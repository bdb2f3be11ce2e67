"""Finance clearance follows the money (workflow rule 5)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..bulk_load import History, decimal_of, fetch_in, memo, quote, update_from_values, update_ids
from ..history import as_system
from ..models import ClearanceApproval, ClearanceRequest, Department, Hold, Notification, Student
from ..money import kes
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
        return f"Outstanding fee balance of {kes(amount)}"
    return "Finance hold: " + ("; ".join(sorted(set(reasons))) or "see the finance office")


_q = quote


def _tables():
    return {m.__name__: _q(m._meta.db_table) for m in (ClearanceApproval, ClearanceRequest, Hold, Student)}


def _lock_open_requests(fin, student_ids) -> None:
    """Lock the open requests of these students that have a finance item, in ascending ids: the
    domain's locking order (requests before their approvals), one statement on PostgreSQL. On
    SQLite there is nothing to lock row by row: a write transaction begins IMMEDIATE (settings)
    and holds the database's write lock from its first statement."""
    if connection.vendor != "postgresql" or not student_ids:
        return
    t = _tables()
    # `{ids}` last: fetch_in passes its parameters after the statement's own
    fetch_in(f"SELECT r.{_q('id')} FROM {t['ClearanceRequest']} r WHERE r.{_q('status')} NOT IN (%s, %s) "
             f"AND EXISTS (SELECT 1 FROM {t['ClearanceApproval']} a WHERE a.{_q('request_id')} = r.{_q('id')} "
             f"AND a.{_q('department_id')} = %s) AND {{ids}} ORDER BY r.{_q('id')} FOR UPDATE OF r",
             [*CLOSED, fin.pk], f"r.{_q('student_id')}", ClearanceRequest._meta.get_field("student"),
             student_ids)


def _finance_items(fin, student_ids) -> list[tuple]:
    """The finance items of the students' open requests, each with the student's active finance
    holds (one row per hold; none: amount and reason NULL), as plain tuples: (approval, request,
    student, registration number, user, status, reason, hold amount, hold reason)."""
    t = _tables()
    return fetch_in(
        f"SELECT a.{_q('id')}, a.{_q('request_id')}, r.{_q('student_id')}, s.{_q('registration_number')}, "
        f"s.{_q('user_id')}, a.{_q('status')}, a.{_q('reason')}, h.{_q('amount')}, h.{_q('reason')} "
        f"FROM {t['ClearanceApproval']} a JOIN {t['ClearanceRequest']} r ON r.{_q('id')} = a.{_q('request_id')} "
        f"JOIN {t['Student']} s ON s.{_q('id')} = r.{_q('student_id')} "
        f"LEFT JOIN {t['Hold']} h ON h.{_q('student_id')} = r.{_q('student_id')} AND h.{_q('department_id')} = %s "
        f"AND h.{_q('status')} = %s "
        f"WHERE a.{_q('department_id')} = %s AND r.{_q('status')} NOT IN (%s, %s) AND {{ids}}",
        [fin.pk, Hold.Status.ACTIVE, fin.pk, *CLOSED], f"r.{_q('student_id')}",
        ClearanceRequest._meta.get_field("student"), student_ids)


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
                             balance_import=None, system: bool = False) -> tuple[BulkResult, BulkResult]:
    """When FINANCE_AUTO_CLEAR is on: for each student's open finance approval, approve it when no
    FIN hold is active, or reject it naming the amount held. Completed and revoked requests are left
    alone (rule 4). The decider is `acting_user`, and `balance_import` when an import caused it.
    Returns the (approve, reject) results; an approve the stage rule refuses (an earlier stage
    still open) is reported and the row stays as it is.

    The system deciding by rule, on plain rows: a constant number of statements per chunk of
    students whatever their number (graduation season decides tens of thousands at once), one
    historical row per decision copied by the database, the students notified after commit. Locks
    the students' open requests before it reads anything: a hold placed or released by a
    transaction still running is followed by that transaction's own call, which waits here for this
    one, so the last to run sees every hold.

    Refused (ValueError): no `acting_user` without `system=True` — the system decides only where
    its caller says so, and its history then says "system: …"."""
    if acting_user is None and not system:
        raise ValueError("finance_clearance_follow needs the acting user, or system=True when the system decides "
                         "by rule")
    reason = as_system(reason, system and acting_user is None)
    approved, rejected = BulkResult(), BulkResult()
    fin = finance_department()
    if not settings.FINANCE_AUTO_CLEAR or fin is None:
        return approved, rejected
    ids = list(dict.fromkeys(student_ids))
    _lock_open_requests(fin, ids)
    items = {}
    for pk, request_id, student_id, reg, user_id, status, current_reason, amount, why in _finance_items(fin, ids):
        item = items.setdefault(pk, [request_id, reg, user_id, status, current_reason, []])
        if why is not None:
            item[5].append((amount, why))
    if not items:
        return approved, rejected
    blocked = _earlier_stage_open(fin, list({item[0] for item in items.values()}))
    S = ClearanceApproval.Status
    reason_of = memo(lambda holds: finance_hold_reason(sum((decimal_of(a) or 0) for a, _ in holds), [w for _, w in holds]))
    approve, reject, rename, notify, requests = [], [], [], [], set()
    for pk, (request_id, reg, user_id, status, current_reason, holds) in items.items():
        if holds:
            text = reason_of(tuple(holds))
            if status in (S.PENDING, S.APPROVED):
                reject.append((pk, text))
                notify.append((user_id, S.REJECTED, text))
                requests.add(request_id)
            elif status == S.REJECTED and current_reason != text:
                # rejected again, naming the new amount: its status stays, so it is not written
                # (SQLite rewrites the index entries of every column a statement sets) and the
                # request's status, derived from the statuses, has nothing to follow
                rename.append((pk, text))
                notify.append((user_id, S.REJECTED, text))
        elif status in (S.PENDING, S.REJECTED):
            if blocked.get(request_id):
                approved.refuse(pk, f"{reg} ({fin.code})",
                                "an earlier stage is still open: " + ", ".join(sorted(blocked[request_id])))
                continue
            approve.append(pk)
            notify.append((user_id, S.APPROVED, ""))
            requests.add(request_id)
    now = timezone.now()
    decider = dict(decided_by_id=getattr(acting_user, "pk", None),
                   decided_by_import_id=getattr(balance_import, "pk", None), decided_at=now, updated_at=now)
    history = History("~", acting_user, reason, now)
    with gc_paused():
        update_ids(ClearanceApproval, approve, dict(status=S.APPROVED, reason="", **decider), history=history)
        update_from_values(ClearanceApproval, ["reason"], reject, history=history,
                           constants=dict(status=S.REJECTED, **decider))
        update_from_values(ClearanceApproval, ["reason"], rename, history=history, constants=decider)
    approved.done.extend(approve)
    rejected.done.extend(pk for pk, _ in reject + rename)
    requests_refresh_status(requests, acting_user=acting_user, reason=reason)
    notifications_send([
        dict(user_id=user_id, kind=Notification.Kind.APPROVED if status == S.APPROVED else Notification.Kind.REJECTED,
             title=f"{fin.code}: {S(status).label.lower()}",
             message=f"{fin.name} {S(status).label.lower()} your clearance." + (f" Reason: {text}" if text else ""),
             link="/student/")
        for user_id, status, text in notify if user_id])
    return approved, rejected

