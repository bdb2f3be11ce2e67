"""Request status is derived from the approvals, always by `derive_request_status`."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.utils import timezone

from ..bulk_load import History, fetch_in, quote, update_ids
from ..models import ClearanceApproval, ClearanceCycle, ClearanceRequest, Notification, Student
from .notifications import notifications_send

Status = ClearanceRequest.Status
A = ClearanceApproval.Status


def derive_request_status(approval_statuses: Iterable[str], *, revoked: bool = False,
                          was_completed: bool = False) -> str:
    """The one function that says what state a request is in.

    revoked → revoked. Once completed, a request stays completed (rule 4: later decisions or holds
    never change it silently; the registry sees them and may revoke). Otherwise: every approval
    approved or waived → completed; any rejected → on hold; any decided → in progress; else pending.
    """
    if revoked:
        return Status.REVOKED
    if was_completed:
        return Status.COMPLETED
    statuses = list(approval_statuses)
    if not statuses:
        return Status.PENDING
    if all(s in ClearanceApproval.CLEARED for s in statuses):
        return Status.COMPLETED
    if any(s == A.REJECTED for s in statuses):
        return Status.ON_HOLD
    if any(s in ClearanceApproval.CLEARED for s in statuses):
        return Status.IN_PROGRESS
    return Status.PENDING


_q = quote


def _requests_with_counts(request_ids: list[int]) -> list[tuple]:
    """Each request with its approvals counted by the database — what derive_request_status needs
    of them is how many there are, how many cleared and how many rejected: (id, status, the
    student's user, the cycle's name, total, cleared, rejected), one row per request."""
    r, a = _q(ClearanceRequest._meta.db_table), _q(ClearanceApproval._meta.db_table)
    s, c = _q(Student._meta.db_table), _q(ClearanceCycle._meta.db_table)
    status, cleared = _q("status"), ", ".join(["%s"] * len(ClearanceApproval.CLEARED))
    return fetch_in(
        f"SELECT r.{_q('id')}, r.{status}, s.{_q('user_id')}, c.{_q('name')}, COUNT(a.{_q('id')}), "
        f"SUM(CASE WHEN a.{status} IN ({cleared}) THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN a.{status} = %s THEN 1 ELSE 0 END) "
        f"FROM {r} r JOIN {s} s ON s.{_q('id')} = r.{_q('student_id')} JOIN {c} c ON c.{_q('id')} = r.{_q('cycle_id')} "
        f"LEFT JOIN {a} a ON a.{_q('request_id')} = r.{_q('id')} WHERE {{ids}} "
        f"GROUP BY r.{_q('id')}, r.{status}, s.{_q('user_id')}, c.{_q('name')}",
        [*ClearanceApproval.CLEARED, A.REJECTED], f"r.{_q('id')}", ClearanceRequest._meta.pk, request_ids)


def requests_refresh_status(request_ids: Iterable[int], *, acting_user, reason: str = "") -> list[int]:
    """Re-derive the status of the given requests and save those that changed (with history).
    Notifies students whose clearance just completed. Returns the ids whose status changed.
    Works on plain rows: one read per chunk of requests and one write per status reached. The
    callers hold the requests' locks (`lock_requests`), so the approvals counted are the ones that
    stand."""
    now = timezone.now()
    by_status = defaultdict(list)
    completed = []
    for pk, current, user_id, cycle_name, total, cleared, rejected in _requests_with_counts(sorted(set(request_ids))):
        cleared, rejected = int(cleared or 0), int(rejected or 0)
        statuses = [A.APPROVED] * cleared + [A.REJECTED] * rejected + [A.PENDING] * (int(total) - cleared - rejected)
        new = derive_request_status(statuses, revoked=current == Status.REVOKED,
                                    was_completed=current == Status.COMPLETED)
        if new != current:
            by_status[new].append(pk)
            if new == Status.COMPLETED:
                completed.append((user_id, cycle_name))
    history = History("~", acting_user, reason or "Status derived from the approvals", now)
    for status, ids in by_status.items():
        update_ids(ClearanceRequest, ids, {"status": status, "updated_at": now,
                                           **({"completed_at": now} if status == Status.COMPLETED else {})},
                   history=history)
    notifications_send([
        dict(user_id=user_id, kind=Notification.Kind.COMPLETED, title="Your clearance is complete",
             message=f"Every office has cleared you for {cycle_name}. The registry can now issue your certificate.",
             link="/student/")
        for user_id, cycle_name in completed if user_id])
    return [pk for ids in by_status.values() for pk in ids]
