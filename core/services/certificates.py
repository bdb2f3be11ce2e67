"""Clearance certificates (rule 4)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..history import save_tracked
from ..models import Certificate, ClearanceRequest


@transaction.atomic
def certificate_issue(*, request: ClearanceRequest, acting_user) -> Certificate:
    """Issue the certificate of a completed request. Refused: the request is not completed; a
    valid certificate already exists (a revoked one is never re-used: revoking also revokes the
    request)."""
    request = ClearanceRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != ClearanceRequest.Status.COMPLETED:
        raise ValidationError(f"Only a completed clearance gets a certificate; this one is "
                              f"{request.get_status_display().lower()}.", code="not_completed")
    existing = Certificate.objects.filter(request=request).first()
    if existing:
        raise ValidationError("A certificate was already issued for this clearance.", code="exists")
    return save_tracked(Certificate(request=request, issued_by=acting_user), user=acting_user,
                        reason="Certificate issued")
