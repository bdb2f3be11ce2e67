import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from django.urls import reverse

from core.services.certificates import certificate_issue
from core.services.requests import request_revoke

pytestmark = pytest.mark.django_db


# revoked late in the evening UTC: already the next day in Nairobi, the date people read
@time_machine.travel(dt.datetime(2026, 12, 4, 22, 30, tzinfo=dt.timezone.utc), tick=True)
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
    assert f"Revoked on {timezone.localtime(certificate.revoked_at):%-d %B %Y}" in body
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


# --- lookups are limited per client IP (issue 9) -------------------------------------------------

@pytest.fixture
def fresh_cache():
    from django.core.cache import cache
    cache.clear()
    yield
    cache.clear()


def test_lookups_past_the_limit_are_a_429_with_retry_after(client, settings, fresh_cache):
    settings.VERIFY_RATE_LIMIT = 3
    url = reverse("verify_certificate", args=["not-a-real-code"])
    assert [client.get(url, REMOTE_ADDR="192.0.2.5").status_code for _ in range(3)] == [404] * 3
    response = client.get(url, REMOTE_ADDR="192.0.2.5")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["Content-Type"].startswith("text/plain")
    assert "Too many certificate lookups" in response.content.decode()
    # another address is counted apart
    assert client.get(url, REMOTE_ADDR="192.0.2.6").status_code == 404


def test_the_limit_ends_with_its_minute(client, settings, fresh_cache, time_machine):
    settings.VERIFY_RATE_LIMIT = 1
    time_machine.move_to("2026-06-01 10:00:10+03:00", tick=False)
    url = reverse("verify_certificate", args=["not-a-real-code"])
    assert client.get(url).status_code == 404
    response = client.get(url)
    assert response.status_code == 429 and response["Retry-After"] == "50"
    time_machine.move_to("2026-06-01 10:01:00+03:00", tick=False)
    assert client.get(url).status_code == 404


def test_a_cache_that_is_down_lets_lookups_through(client, settings, fresh_cache, monkeypatch):
    settings.VERIFY_RATE_LIMIT = 1
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache unavailable")
    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "incr", down)
    url = reverse("verify_certificate", args=["not-a-real-code"])
    assert [client.get(url).status_code for _ in range(3)] == [404] * 3


def test_no_limit_when_set_to_zero(client, settings, fresh_cache):
    settings.VERIFY_RATE_LIMIT = 0
    url = reverse("verify_certificate", args=["not-a-real-code"])
    assert {client.get(url).status_code for _ in range(5)} == {404}
