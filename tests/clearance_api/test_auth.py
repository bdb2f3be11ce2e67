"""/api/auth/: tokens for email + password, the sites' lockout and second factor on the token
request, refresh (rotation), sign-out (blacklist), who am I; expired and tampered tokens."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from core import permissions

pytestmark = pytest.mark.django_db

PASSWORD = "right-pass-1"
LIMIT = 5


def token(api, email, password=PASSWORD, ip="192.0.2.10", **extra):
    return api.post("/api/auth/token/", {"email": email, "password": password, **extra}, format="json",
                    REMOTE_ADDR=ip)


@pytest.fixture
def person(make_user):
    def make(role, email):
        user = make_user(role, email=email)
        user.set_password(PASSWORD)
        user.save()
        return user
    return make


@pytest.fixture
def learner(person):
    return person(permissions.STUDENT, "learner@clearance.test")


@pytest.fixture
def officer(person):
    return person(permissions.FINANCE, "finance@clearance.test")


def test_email_and_password_give_an_access_and_a_refresh_token_that_reach_me(api, learner):
    response = token(api, " Learner@Clearance.TEST ")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"access", "refresh", "access_expires_in"} and body["access_expires_in"] == 600
    me = api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["email"] == learner.email and me.json()["roles"] == [permissions.STUDENT]
    assert me.json()["via"] == "token"


def test_a_wrong_email_and_a_wrong_password_get_the_same_answer(api, learner, make_user):
    disabled = make_user(permissions.STUDENT, email="gone@clearance.test", is_active=False)
    disabled.set_password(PASSWORD)
    disabled.save()
    answers = [token(api, "nobody@clearance.test"), token(api, learner.email, "wrong-pass"),
               token(api, disabled.email)]
    assert {r.status_code for r in answers} == {401}
    assert len({r.json()["detail"] for r in answers}) == 1
    assert answers[0].json() == {"detail": "The email or password is not right (or the account is disabled).",
                                 "errors": {}}


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_the_sites_lockout_applies_to_the_token_request_with_when_to_retry(api, learner, client):
    for _ in range(LIMIT - 1):
        assert token(api, learner.email, "wrong-pass").status_code == 401
    locked = token(api, learner.email, "wrong-pass")
    assert locked.status_code == 429 and locked["Content-Type"] == "application/json"
    assert "locked on this device's network address for 30 minutes" in locked.json()["detail"]
    assert locked["Retry-After"] == "1800"
    # the right password is refused too while locked, from this address …
    assert token(api, learner.email).status_code == 429
    # … and the same lock holds on the site's sign-in page (one count for both)
    page = client.post("/student/login/?next=/student/", {"username": learner.email, "password": PASSWORD},
                       REMOTE_ADDR="192.0.2.10")
    assert page.status_code == 429
    # another address is another count
    assert token(api, learner.email, ip="192.0.2.99").status_code == 200
    with time_machine.travel(timedelta(minutes=31)):
        assert token(api, learner.email).status_code == 200


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
def test_a_success_resets_the_count(api, learner):
    for _ in range(LIMIT - 1):
        token(api, learner.email, "wrong-pass")
    assert token(api, learner.email).status_code == 200
    assert not AccessAttempt.objects.filter(username=learner.email, failures_since_start__gt=0).exists()
    for _ in range(LIMIT - 1):
        assert token(api, learner.email, "wrong-pass").status_code == 401


def _code(device):
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.fixture
def otp_on(settings):
    settings.OTP_REQUIRED = True


def test_with_second_factors_required_a_staff_token_needs_the_code(api, otp_on, officer):
    device = TOTPDevice.objects.create(user=officer, name="Authenticator app", confirmed=True)
    missing = token(api, officer.email)
    assert missing.status_code == 400 and "otp" in missing.json()["errors"]
    wrong = token(api, officer.email, otp="000000" if _code(device) != "000000" else "111111")
    assert wrong.status_code == 400 and "not right" in wrong.json()["errors"]["otp"][0]
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    assert token(api, officer.email, otp=_code(device)).status_code == 200


def test_a_staff_person_without_an_authenticator_is_sent_to_set_it_up_on_the_site(api, otp_on, officer):
    response = token(api, officer.email, otp="123456")
    assert response.status_code == 403
    assert "/finance/" in response.json()["detail"] and "authenticator" in response.json()["detail"]


def test_students_give_no_second_factor(api, otp_on, learner):
    assert token(api, learner.email).status_code == 200


def test_a_wrong_password_is_refused_before_the_second_factor_is_looked_at(api, otp_on, officer):
    assert token(api, officer.email, "wrong-pass", otp="123456").status_code == 401


def test_refresh_rotates_and_the_old_refresh_token_is_spent(api, learner):
    first = token(api, learner.email).json()
    response = api.post("/api/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 200 and response.json()["refresh"] != first["refresh"]
    again = api.post("/api/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert again.status_code == 401 and again.json()["errors"] == {}


def test_refresh_is_refused_for_a_disabled_account_and_after_a_password_change(api, learner):
    pair = token(api, learner.email).json()
    learner.set_password("another-pass-2")
    learner.save()
    assert api.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 401
    assert api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}").status_code == 401
    pair = token(api, learner.email, "another-pass-2").json()
    learner.is_active = False
    learner.save()
    assert api.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 401
    assert api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}").status_code == 401


def test_logout_blacklists_the_refresh_token(api, learner, officer):
    pair = token(api, learner.email).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    other = token(api, officer.email).json()
    assert client.post("/api/auth/logout/", {"refresh": other["refresh"]}, format="json").status_code == 400
    assert client.post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code == 204
    assert api.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").status_code == 401
    assert client.post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code == 400
    assert APIClient().post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_an_expired_or_tampered_access_token_is_a_401_in_the_error_shape(api, learner):
    access = token(api, learner.email).json()["access"]
    head, payload, signature = access.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}xx"
    for bad in (tampered, "not-a-token", access + "x"):
        response = api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {bad}")
        assert response.status_code == 401 and set(response.json()) == {"detail", "errors"}
    with time_machine.travel(timedelta(minutes=11)):
        assert api.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code == 401
    assert api.get("/api/auth/me/").status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"email": "a@b.test"}, "password"),
    ({"email": "a@b.test", "password": "x", "role": "admin"}, "role"),
    ({"email": ["a"], "password": "x"}, "email"),
    ({"email": "a" * 300, "password": "x"}, "email"),
])
def test_bad_token_requests_are_400_naming_the_field(api, body, field):
    response = api.post("/api/auth/token/", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]


def test_malformed_json_and_a_body_that_is_not_an_object_are_400(api):
    assert api.post("/api/auth/token/", "{nope", content_type="application/json").status_code == 400
    response = api.post("/api/auth/token/", "[1, 2]", content_type="application/json")
    assert response.status_code == 400 and set(response.json()) == {"detail", "errors"}


def test_me_names_the_offices_a_reviewer_reviews(as_user, make_reviewer):
    reviewer = make_reviewer("LIB", "SPT")
    body = as_user(reviewer).get("/api/auth/me/").json()
    assert body["offices"] == ["LIB", "SPT"] and body["roles"] == [permissions.STAFF]


def test_sign_in_requests_are_throttled_per_address(api, monkeypatch):
    from clearance_api.throttling import SignInThrottle
    monkeypatch.setattr(SignInThrottle, "THROTTLE_RATES", {"signin": "3/min"})
    answers = [token(api, f"x{i}@clearance.test").status_code for i in range(4)]
    assert answers == [401, 401, 401, 429]
    assert token(api, "x@clearance.test", ip="192.0.2.77").status_code == 401   # another address


def test_a_cache_that_is_down_lets_requests_through(as_user, learner, monkeypatch):
    from django.core.cache.backends.locmem import LocMemCache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")
    monkeypatch.setattr(LocMemCache, "get", down)
    monkeypatch.setattr(LocMemCache, "set", down)
    assert as_user(learner).get("/api/auth/me/").status_code == 200
