"""Request status is derived from the approvals, always by `derive_request_status`."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.utils import timezone

from ..bulk_load import History, bulk_cursor, execute_in, fetch_in, quote, update_ids
from ..models import ClearanceApproval, ClearanceCycle, ClearanceRequest, Department, Notification, Student
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


def stages_open(items: Iterable[tuple[int, str]]) -> list[bool]:
    """The one rule of `ClearanceApproval.stage_open`, for the (stage, status) of each of one
    request's items: open when no item of an earlier stage is still to be cleared. What a request's
    opening stores (and the demo and benchmark data); `approvals_refresh_stage_open` is its SQL."""
    items = list(items)
    return [all(status in ClearanceApproval.CLEARED for other, status in items if other < stage)
            for stage, _ in items]


def approvals_refresh_stage_open(request_ids: Iterable[int] | None) -> int:
    """Store `stage_open` again on the approvals of these requests (None: of every request, after an
    office's stage changed), writing only the rows whose value changes: one UPDATE per chunk of
    requests. An item of the first stage has no earlier one and is always open, so only the later
    stages' items are looked at (the registry's, not the six offices' a balance import decides for;
    a stage change re-stores them all). The callers hold the requests' locks (as for the status), so
    the siblings read are the ones that stand. Returns the number of approvals changed."""
    t, d = _q(ClearanceApproval._meta.db_table), _q(Department._meta.db_table)
    stage_of_a = f"(SELECT ad.{_q('stage')} FROM {d} ad WHERE ad.{_q('id')} = a.{_q('department_id')})"
    cleared = ", ".join(["%s"] * len(ClearanceApproval.CLEARED))
    opened = (f"NOT EXISTS (SELECT 1 FROM {t} b JOIN {d} bd ON bd.{_q('id')} = b.{_q('department_id')} "
              f"WHERE b.{_q('request_id')} = a.{_q('request_id')} AND b.{_q('status')} NOT IN ({cleared}) "
              f"AND bd.{_q('stage')} < {stage_of_a})")
    # SQLite's UPDATE takes no alias: the correlated subquery names the row through a one-row select
    update = (f"UPDATE {t} SET {_q('stage_open')} = NOT {_q('stage_open')} WHERE {_q('id')} IN ("
              f"SELECT a.{_q('id')} FROM {t} a WHERE a.{_q('stage_open')} <> ({opened})")
    params = list(ClearanceApproval.CLEARED)
    if request_ids is None:
        with bulk_cursor() as cursor:
            cursor.execute(update + ")", params)
            return cursor.rowcount
    later = (f" AND a.{_q('department_id')} IN (SELECT {_q('id')} FROM {d} WHERE {_q('stage')} > "
             f"(SELECT MIN({_q('stage')}) FROM {d})) AND {{ids}})")
    return execute_in(update + later, params, f"a.{_q('request_id')}", ClearanceRequest._meta.pk,
                      sorted(set(request_ids)))


def requests_refresh_status(request_ids: Iterable[int], *, acting_user, reason: str = "") -> list[int]:
    """Re-derive the status of the given requests and save those that changed (with history).
    Notifies students whose clearance just completed. Returns the ids whose status changed.
    Works on plain rows: one read per chunk of requests and one write per status reached. The
    callers hold the requests' locks (`lock_requests`), so the approvals counted are the ones that
    stand."""
    now = timezone.now()
    request_ids = sorted(set(request_ids))
    approvals_refresh_stage_open(request_ids)       # which items wait, as the decisions left them
    by_status = defaultdict(list)
    completed = []
    for pk, current, user_id, cycle_name, total, cleared, rejected in _requests_with_counts(request_ids):
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
