"""Request status is derived from the approvals, always by `derive_request_status`."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from django.db.models import Count, Q
from django.utils import timezone

from ..history import bulk_update_tracked
from ..models import ClearanceApproval, ClearanceRequest, Notification
from ._common import id_chunks
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


def requests_refresh_status(request_ids: Iterable[int], *, acting_user, reason: str = "") -> list[int]:
    """Re-derive the status of the given requests and save those that changed (with history).
    Notifies students whose clearance just completed. Returns the ids whose status changed.
    Works on plain rows, a constant number of queries per 2,000 requests. The callers hold the
    requests' locks (`lock_requests`), so the approvals counted here are the ones that stand."""
    changed_ids = []
    now = timezone.now()
    for ids in id_chunks(sorted(set(request_ids))):
        # the approvals counted by the database, one row per request: what derive_request_status
        # needs of them is how many are cleared, rejected and open
        by_request = defaultdict(list)
        for request_id, total, cleared, rejected in (
                ClearanceApproval.objects.filter(request_id__in=ids).order_by().values("request_id")
                .annotate(total=Count("pk"), cleared=Count("pk", filter=Q(status__in=ClearanceApproval.CLEARED)),
                          rejected=Count("pk", filter=Q(status=A.REJECTED)))
                .values_list("request_id", "total", "cleared", "rejected")):
            by_request[request_id] = [A.APPROVED] * cleared + [A.REJECTED] * rejected + [A.PENDING] * (
                total - cleared - rejected)
        changed, completed = [], []
        for row in ClearanceRequest.objects.filter(pk__in=ids).values("id", "status", "completed_at",
                                                                      "student__user_id", "cycle__name"):
            new = derive_request_status(by_request[row["id"]], revoked=row["status"] == Status.REVOKED,
                                        was_completed=row["status"] == Status.COMPLETED)
            if new != row["status"]:
                row["status"] = new
                if new == Status.COMPLETED:
                    row["completed_at"] = now
                    completed.append(row)
                changed.append(row)
        bulk_update_tracked(changed, ClearanceRequest, ["status", "completed_at"], user=acting_user,
                            reason=reason or "Status derived from the approvals")
        changed_ids.extend(r["id"] for r in changed)
        notifications_send([
            dict(user_id=r["student__user_id"], kind=Notification.Kind.COMPLETED,
                 title="Your clearance is complete",
                 message=f"Every office has cleared you for {r['cycle__name']}. The registry can now issue your "
                         "certificate.",
                 link="/student/")
            for r in completed if r["student__user_id"]])
    return changed_ids
