import pytest
from django.urls import reverse

from core.services.certificates import certificate_issue
from core.services.requests import request_revoke

pytestmark = pytest.mark.django_db


def test_anyone_can_verify_a_certificate_and_sees_a_revocation(client, clearance, complete_request,
                                                               registry_user):
    request = complete_request(clearance)
    certificate = certificate_issue(request=request, acting_user=registry_user)
    response = client.get(reverse("verify_certificate", args=[certificate.code]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Valid" in body and request.student.registration_number in body
    request_revoke(request=request, acting_user=registry_user, reason="Hold found after completion")
    body = client.get(reverse("verify_certificate", args=[certificate.code])).content.decode()
    assert "Revoked" in body and "Hold found after completion" in body


def test_an_unknown_code_is_a_404_that_says_so(client):
    response = client.get(reverse("verify_certificate", args=["not-a-real-code"]))
    assert response.status_code == 404
    assert "No certificate has the code" in response.content.decode()
