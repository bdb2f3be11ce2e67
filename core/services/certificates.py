"""Clearance certificates (rule 4)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..history import save_tracked
from ..models import Certificate, ClearanceRequest, Notification
from ._common import BulkResult, lock_requests
from .notifications import notifications_send


@transaction.atomic
def certificates_issue(*, request_ids: Iterable[int], acting_user) -> BulkResult:
    """Issue the certificate of each of these clearance requests; `done` holds the new
    certificates' ids. Refused, row by row: no such request; the request is not completed
    (pending, in progress, on hold, revoked); a certificate was already issued for it (a valid one
    stands; a revoked one is never re-used: revoking it revoked the request too, and the student's
    new request after a new completion gets a certificate with a new code).

    Locks the requests (ascending ids, `lock_requests`) before reading their status and
    certificate, so a revocation or a second issue running at the same time waits for this one
    and then sees its certificate."""
    result = BulkResult()
    issued = []
    ids = sorted({int(pk) for pk in request_ids})
    found = set(lock_requests(ids))
    for pk in ids:
        if pk not in found:
            result.refuse(pk, f"#{pk}", "no such clearance request")
    requests = (ClearanceRequest.objects.filter(pk__in=found).select_related("student", "certificate")
                .order_by("pk"))
    for request in requests:
        label = request.student.registration_number
        if request.status != ClearanceRequest.Status.COMPLETED:
            result.refuse(request.pk, label, f"Only a completed clearance gets a certificate; this one is "
                                             f"{request.get_status_display().lower()}.")
            continue
        existing = getattr(request, "certificate", None)
        if existing is not None:
            result.refuse(request.pk, label, "A certificate was already issued for this clearance"
                          + (f" (revoked {timezone.localtime(existing.revoked_at):%d %b %Y})." if existing.revoked_at else
                             f" (verification code {existing.code})."))
            continue
        certificate = save_tracked(Certificate(request=request, issued_by=acting_user), user=acting_user,
                                   reason="Certificate issued")
        result.done.append(certificate.pk)
        if request.student.user_id:
            issued.append(dict(user_id=request.student.user_id, kind=Notification.Kind.CERTIFICATE,
                               title="Your clearance certificate is ready",
                               message=f"Your clearance certificate (verification code {certificate.code}) can be "
                                       "downloaded from your clearance page.",
                               link=f"/student/certificates/{certificate.pk}/pdf/"))
    notifications_send(issued)
    return result


def certificate_issue(*, request: ClearanceRequest, acting_user) -> Certificate:
    """Issue the certificate of one completed request (`certificates_issue` for one row). Refused
    as there, with its reason as the ValidationError."""
    result = certificates_issue(request_ids=[request.pk], acting_user=acting_user)
    result.raise_if_refused()
    return Certificate.objects.get(pk=result.done[0])
