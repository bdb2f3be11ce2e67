from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from ..models import ClearanceApproval, ClearanceRequest, Hold


def completed_but_now_held() -> QuerySet[ClearanceRequest]:
    """Rule 4: completed requests whose student now has an active hold (the registry decides)."""
    active = Hold.objects.filter(student_id=OuterRef("student_id"), status=Hold.Status.ACTIVE)
    return (ClearanceRequest.objects.filter(status=ClearanceRequest.Status.COMPLETED)
            .filter(Exists(active)).select_related("student", "cycle"))


def active_holds_for_approval(approval: ClearanceApproval) -> QuerySet[Hold]:
    """Rule 1: the holds an approval's office has on the student, shown beside the approval."""
    return Hold.objects.filter(student_id=approval.request.student_id, department_id=approval.department_id,
                               status=Hold.Status.ACTIVE)
