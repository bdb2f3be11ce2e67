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


def certificate_for_verification(code: str):
    """The certificate with this code and every office's decision, or None (one query each)."""
    from ..models import Certificate
    certificate = (Certificate.objects.select_related("request__student__programme", "request__cycle")
                   .filter(code=code).first())
    if certificate is None:
        return None, []
    approvals = list(ClearanceApproval.objects.filter(request_id=certificate.request_id)
                     .select_related("department").order_by("department__stage", "department__code"))
    return certificate, approvals
