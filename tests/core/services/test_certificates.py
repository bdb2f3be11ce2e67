"""Clearance certificates (rule 4)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.models import Certificate, ClearanceRequest
from core.services.certificates import certificate_issue
from core.services.requests import request_revoke

pytestmark = pytest.mark.django_db


def test_certificate_is_issued_for_a_completed_request(clearance, complete_request, registry_user):
    complete_request(clearance)
    certificate = certificate_issue(request=clearance, acting_user=registry_user)
    stored = Certificate.objects.get(pk=certificate.pk)
    assert stored.request_id == clearance.pk
    assert stored.issued_by == registry_user
    assert stored.is_valid
    assert len(stored.code) >= 32  # unguessable
    assert stored.history.get().history_change_reason == "Certificate issued"


def test_codes_differ_between_certificates(open_request, complete_request, registry_user):
    from tests import factories
    codes = set()
    for _ in range(3):
        request = complete_request(open_request(factories.StudentFactory()))
        codes.add(certificate_issue(request=request, acting_user=registry_user).code)
    assert len(codes) == 3


def test_certificate_is_refused_for_a_request_not_completed(clearance, registry_user):
    with pytest.raises(ValidationError) as exc:
        certificate_issue(request=clearance, acting_user=registry_user)
    assert exc.value.messages[0] == "Only a completed clearance gets a certificate; this one is in progress."
    assert not Certificate.objects.exists()


def test_a_second_certificate_is_refused(clearance, complete_request, registry_user):
    complete_request(clearance)
    certificate_issue(request=clearance, acting_user=registry_user)
    with pytest.raises(ValidationError, match="already issued"):
        certificate_issue(request=clearance, acting_user=registry_user)
    assert Certificate.objects.count() == 1


def test_revoking_the_clearance_revokes_the_certificate_and_no_new_one_is_issued(clearance, complete_request,
                                                                                  registry_user):
    complete_request(clearance)
    certificate = certificate_issue(request=clearance, acting_user=registry_user)
    request_revoke(request=clearance, acting_user=registry_user, reason="Fee found unpaid")
    certificate.refresh_from_db()
    assert not certificate.is_valid
    assert certificate.revoked_reason == "Fee found unpaid"
    assert ClearanceRequest.objects.get(pk=clearance.pk).status == ClearanceRequest.Status.REVOKED
    with pytest.raises(ValidationError, match="this one is revoked"):
        certificate_issue(request=clearance, acting_user=registry_user)
