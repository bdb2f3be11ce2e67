"""Clearance certificates (rule 4)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.models import Certificate, ClearanceRequest
from core.services.certificates import certificate_issue, certificates_issue
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


# --- in bulk ------------------------------------------------------------------------------------

def test_certificates_issue_issues_completed_requests_and_refuses_the_rest_row_by_row(
        open_request, complete_request, registry_user):
    from tests import factories
    done, pending, revoked, issued = (factories.StudentFactory(registration_number=f"SCE/CS/{i:04d}/2022")
                                      for i in (1, 2, 3, 4))
    done_request = complete_request(open_request(done))
    pending_request = open_request(pending)
    revoked_request = complete_request(open_request(revoked))
    request_revoke(request=revoked_request, acting_user=registry_user, reason="Withdrew")
    issued_request = complete_request(open_request(issued))
    first = certificate_issue(request=issued_request, acting_user=registry_user)

    result = certificates_issue(request_ids=[issued_request.pk, revoked_request.pk, pending_request.pk,
                                             done_request.pk, 999_999], acting_user=registry_user)

    new = Certificate.objects.get(request=done_request)
    assert result.done == [new.pk] and new.issued_by == registry_user and new.is_valid
    reasons = {r.label: r.reason for r in result.refused}
    assert reasons == {
        "SCE/CS/0002/2022": "Only a completed clearance gets a certificate; this one is in progress.",
        "SCE/CS/0003/2022": "Only a completed clearance gets a certificate; this one is revoked.",
        "SCE/CS/0004/2022": f"A certificate was already issued for this clearance (verification code {first.code}).",
        "#999999": "no such clearance request",
    }
    assert Certificate.objects.count() == 2  # the one before and the one issued now


def test_reissuing_after_a_new_completion_makes_a_new_code(clearance, student, open_request, complete_request,
                                                            registry_user):
    old = certificate_issue(request=complete_request(clearance), acting_user=registry_user)
    request_revoke(request=clearance, acting_user=registry_user, reason="Hold found after completion")
    again = complete_request(open_request(student))  # the student's new request in the same cycle
    assert again.pk != clearance.pk

    result = certificates_issue(request_ids=[again.pk], acting_user=registry_user)

    new = Certificate.objects.get(pk=result.done[0])
    old.refresh_from_db()
    assert new.request_id == again.pk and new.is_valid
    assert new.code != old.code and not old.is_valid
