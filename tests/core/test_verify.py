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
    assert 'data-status="valid"' in body and request.student.registration_number in body
    request_revoke(request=request, acting_user=registry_user, reason="Hold found after completion")
    certificate.refresh_from_db()
    response = client.get(reverse("verify_certificate", args=[certificate.code]))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="revoked"' in body and 'data-status="valid"' not in body
    assert f"Revoked on {certificate.revoked_at:%-d %B %Y}" in body
    assert "Hold found after completion" not in body  # why it was revoked is not the public's business


def test_the_page_shows_only_name_registration_number_programme_and_status(client, clearance, complete_request,
                                                                          registry_user, settings):
    settings.UNIVERSITY_NAME = "Kilimanjaro University of Technology"
    request = complete_request(clearance)
    student = request.student
    certificate = certificate_issue(request=request, acting_user=registry_user)
    body = client.get(reverse("verify_certificate", args=[certificate.code])).content.decode()
    assert student.full_name in body and student.registration_number in body and student.programme.name in body
    assert "Kilimanjaro University of Technology" in body
    for office in ("Finance", "Library", "Gown store", "Sports", "School office"):
        assert office not in body  # no office's decision
    assert student.email not in body and str(request.cycle) not in body
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in body


def test_an_unknown_code_is_a_404_that_says_so(client):
    response = client.get(reverse("verify_certificate", args=["not-a-real-code"]))
    assert response.status_code == 404
    body = response.content.decode()
    assert "No certificate has the code" in body and "not-a-real-code" in body
