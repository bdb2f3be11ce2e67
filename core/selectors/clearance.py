from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from ..models import Certificate, ClearanceApproval, ClearanceRequest, Hold
from ..sql import students as students_sql


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
    """The certificate with this code, with what the public page shows of it (the student's name,
    registration number and programme), or None. One query."""
    return (Certificate.objects.select_related("request__student__programme")
            .filter(code=code).first())


@dataclass(frozen=True)
class CertificateDocument:
    certificate: Certificate
    decisions: list[ClearanceApproval]


def certificate_for_document(certificate_id: int) -> CertificateDocument | None:
    """The certificate with everything its PDF prints: the student, programme, cycle, and every
    office's decision with who decided it (in stage, then office order). None when there is none.
    Two queries."""
    certificate = (Certificate.objects.select_related("request__student__programme", "request__cycle",
                                                      "issued_by", "revoked_by")
                   .filter(pk=certificate_id).first())
    if certificate is None:
        return None
    decisions = list(ClearanceApproval.objects.filter(request_id=certificate.request_id)
                     .select_related("department", "decided_by", "decided_by_import")
                     .order_by("department__stage", "department__code"))
    return CertificateDocument(certificate=certificate, decisions=decisions)


def cohort_years() -> list[int]:
    """The cohorts (expected graduation years) students belong to, newest first: the choices of
    every cohort filter. An index skip scan (core.sql.students), not a read of every student."""
    return students_sql.cohort_years()
