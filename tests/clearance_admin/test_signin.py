"""Signing in to the sites: lockout after repeated failures (per account and address), unlock from
/admin/, and the second factor every role but students gives (issue 9)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import permissions

pytestmark = pytest.mark.django_db

PASSWORD = "right-pass-1"
LIMIT = 5


def sign_in(client, site, email, password, ip="192.0.2.10"):
    return client.post(f"/{site}/login/?next=/{site}/", {"username": email, "password": password},
                       REMOTE_ADDR=ip)


@pytest.fixture
def librarian(make_user):
    user = make_user(permissions.STAFF, email="lib@clearance.test")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def officer(make_user):
    user = make_user(permissions.FINANCE, email="finance@clearance.test")
    user.set_password(PASSWORD)
    user.save()
    return user


# --- lockout ----------------------------------------------------------------------------------

@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_the_right_password_is_refused_after_the_limit_of_failures_with_how_long_and_whom_to_ask(client, librarian):
    for _ in range(LIMIT - 1):
        response = sign_in(client, "staff", librarian.email, "wrong")
        assert response.status_code == 200
        assert "locked" not in response.content.decode()
    response = sign_in(client, "staff", librarian.email, "wrong")
    assert response.status_code == 429
    response = sign_in(client, "staff", librarian.email, PASSWORD)
    body = response.content.decode()
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "locked" in body and "30 minutes" in body and "IT office" in body
    assert 'id="login-form"' in body          # the site's own sign-in page, not a bare text


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_changing_the_case_of_the_email_does_not_start_a_new_count(client, librarian):
    for i in range(LIMIT):
        sign_in(client, "staff", librarian.email.upper() if i % 2 else librarian.email, "wrong")
    assert sign_in(client, "staff", " LIB@clearance.test ", PASSWORD).status_code == 429


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_the_lock_is_per_account_and_address(client, librarian, officer):
    for _ in range(LIMIT):
        sign_in(client, "staff", librarian.email, "wrong", ip="192.0.2.10")
    # another account from the same address signs in
    response = sign_in(client, "finance", officer.email, PASSWORD, ip="192.0.2.10")
    assert response.status_code == 302 and response["Location"] == "/finance/"
    client.logout()
    # the same account from another address signs in
    response = sign_in(client, "staff", librarian.email, PASSWORD, ip="198.51.100.20")
    assert response.status_code == 302 and response["Location"] == "/staff/"


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_a_success_resets_the_count(client, librarian):
    for _ in range(LIMIT - 1):
        sign_in(client, "staff", librarian.email, "wrong")
    assert sign_in(client, "staff", librarian.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        sign_in(client, "staff", librarian.email, "wrong")
    assert sign_in(client, "staff", librarian.email, PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=LIMIT, TRUSTED_PROXY_COUNT=1)
def test_the_address_counted_is_the_one_history_records(client, librarian):
    # behind one proxy: the right-most address it added, not the one the client wrote (6.6.6.6)
    for _ in range(LIMIT):
        client.post("/staff/login/?next=/staff/", {"username": librarian.email, "password": "wrong"},
                    REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_an_administrator_unlocks_from_the_attempts_list_and_the_person_signs_in(client, librarian, superuser):
    for _ in range(LIMIT):
        sign_in(client, "staff", librarian.email, "wrong")
    attempt = AccessAttempt.objects.get()
    assert attempt.username == librarian.email
    admin = type(client)()
    admin.force_login(superuser)
    assert admin.get("/admin/axes/accessattempt/").status_code == 200
    response = admin.post("/admin/axes/accessattempt/", {"action": "unlock_selected", "_selected_action": [attempt.pk]},
                          follow=True)
    assert f"{librarian.email} from 192.0.2.10: unlocked" in response.content.decode()
    assert not AccessAttempt.objects.exists()
    unlocked = librarian.history.first()
    assert (unlocked.history_change_reason, unlocked.history_user) == ("Sign-in unlocked from 192.0.2.10", superuser)
    assert sign_in(client, "staff", librarian.email, PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(minutes=30))
def test_unlock_sign_in_from_the_user_list(client, librarian, superuser):
    for ip in ("192.0.2.10", "192.0.2.11"):
        for _ in range(LIMIT):
            sign_in(client, "staff", librarian.email, "wrong", ip=ip)
    admin = type(client)()
    admin.force_login(superuser)
    response = admin.post("/admin/core/user/", {"action": "unlock_signin", "_selected_action": [librarian.pk]},
                          follow=True)
    assert f"{librarian.email}: sign-in unlocked" in response.content.decode()
    assert sign_in(client, "staff", librarian.email, PASSWORD, ip="192.0.2.11").status_code == 302


def test_the_lockout_pages_are_superusers_only(client, librarian):
    client.force_login(librarian)
    response = client.get("/admin/axes/accessattempt/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- second factor ----------------------------------------------------------------------------

def code_for(device, offset=0):
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset) :06d}"


@pytest.fixture
def otp_on(settings):
    settings.OTP_REQUIRED = True


def test_with_otp_required_a_signed_in_officer_is_sent_to_set_up_a_second_factor(client, otp_on, officer):
    assert sign_in(client, "finance", officer.email, PASSWORD).status_code == 302
    response = client.get("/finance/")
    assert response.status_code == 302
    assert response["Location"].startswith("/finance/second-factor/?next=/finance/")
    # every page of the site, the ModelAdmins' included
    response = client.get("/finance/core/payment/")
    assert response["Location"].startswith("/finance/second-factor/")
    page = client.get(response["Location"])
    body = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in body and 'id="otp-secret"' in body
    device = TOTPDevice.objects.get(user=officer)
    assert not device.confirmed
    # the page reloaded shows the same secret
    client.get("/finance/second-factor/")
    assert TOTPDevice.objects.get(user=officer).pk == device.pk


def test_enrolment_confirms_the_device_shows_recovery_codes_once_and_reaches_the_dashboard(client, otp_on, officer):
    sign_in(client, "finance", officer.email, PASSWORD)
    client.get("/finance/second-factor/?next=/finance/")
    device = TOTPDevice.objects.get(user=officer)
    response = client.post("/finance/second-factor/", {"token": "000000" if code_for(device) != "000000" else "111111",
                                                       "next": "/finance/"})
    assert response.status_code == 200 and "That code is not right" in response.content.decode()
    response = client.post("/finance/second-factor/", {"token": code_for(device), "next": "/finance/"})
    assert "Too many wrong codes: wait 1 second," in response.content.decode()   # slowed down, as at sign-in
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    response = client.post("/finance/second-factor/", {"token": code_for(device), "next": "/finance/"})
    assert response.status_code == 302 and response["Location"].startswith("/finance/second-factor/recovery-codes/")
    page = client.get(response["Location"])
    codes = list(StaticToken.objects.filter(device__user=officer).values_list("token", flat=True))
    assert len(codes) == 10 and all(c in page.content.decode() for c in codes)
    # shown once
    assert client.get(response["Location"]).status_code == 302
    assert TOTPDevice.objects.get(user=officer).confirmed
    assert client.get("/finance/").status_code == 200
    assert officer.history.first().history_change_reason == "Second factor set up"


@pytest.fixture
def enrolled(officer):
    device = TOTPDevice.objects.create(user=officer, name="Authenticator app", confirmed=True)
    static = StaticDevice.objects.create(user=officer, name="Recovery codes", confirmed=True)
    StaticToken.objects.create(device=static, token="abcd2345")
    StaticToken.objects.create(device=static, token="efgh6789")
    return device


def test_an_enrolled_person_is_asked_for_the_code_before_any_page(client, otp_on, officer, enrolled):
    sign_in(client, "finance", officer.email, PASSWORD)
    response = client.get("/finance/second-factor/?next=/finance/core/payment/")
    body = response.content.decode()
    assert 'id="otp-verify"' in body and "<svg" not in body
    response = client.post("/finance/second-factor/", {"token": "12345", "next": "/finance/core/payment/"})
    assert "That code is not right" in response.content.decode()
    # the wrong code above slowed the device down for a second
    TOTPDevice.objects.filter(pk=enrolled.pk).update(throttling_failure_count=0)
    response = client.post("/finance/second-factor/", {"token": code_for(enrolled), "next": "/finance/core/payment/"})
    assert response.status_code == 302 and response["Location"] == "/finance/core/payment/"
    assert client.get("/finance/core/payment/").status_code == 200


def test_wrong_codes_slow_the_device_down_and_say_how_long_to_wait(client, otp_on, officer, enrolled):
    sign_in(client, "finance", officer.email, PASSWORD)
    client.post("/finance/second-factor/", {"token": "000001"})
    response = client.post("/finance/second-factor/", {"token": code_for(enrolled)})
    assert "Too many wrong codes: wait" in response.content.decode()
    assert client.get("/finance/").status_code == 302


def test_a_recovery_code_signs_in_once(client, otp_on, officer, enrolled):
    sign_in(client, "finance", officer.email, PASSWORD)
    response = client.post("/finance/second-factor/", {"token": "ABCD 2345", "next": "/finance/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/finance/"
    assert "You used a recovery code; 1 left" in response.content.decode()
    assert not StaticToken.objects.filter(token="abcd2345").exists()
    client.logout()
    sign_in(client, "finance", officer.email, PASSWORD)
    response = client.post("/finance/second-factor/", {"token": "abcd2345"})
    assert response.status_code == 200 and "That code is not right" in response.content.decode()


def test_sign_out_works_before_the_second_factor(client, otp_on, officer, enrolled):
    sign_in(client, "finance", officer.email, PASSWORD)
    assert 'id="otp-logout"' in client.get("/finance/second-factor/").content.decode()
    client.post("/finance/logout/")
    assert "_auth_user_id" not in client.session


def test_the_user_list_shows_who_has_a_second_factor(client, officer, enrolled, superuser, make_user):
    make_user(permissions.STAFF, email="lib@clearance.test")
    client.force_login(superuser)
    response = client.get("/admin/core/user/")
    assert response.status_code == 200
    users = {u.email: u.has_second_factor for u in response.context["cl"].result_list}
    assert users[officer.email] is True and users["lib@clearance.test"] is False


def test_the_next_address_stays_on_this_host(client, otp_on, officer, enrolled):
    sign_in(client, "finance", officer.email, PASSWORD)
    response = client.post("/finance/second-factor/", {"token": code_for(enrolled), "next": "https://evil.example/"})
    assert response["Location"] == "/finance/"


def test_students_give_no_second_factor(client, otp_on, make_user):
    student = make_user(permissions.STUDENT, email="student@clearance.test")
    student.set_password(PASSWORD)
    student.save()
    assert sign_in(client, "student", student.email, PASSWORD).status_code == 302
    assert client.get("/student/").status_code == 200


@pytest.mark.parametrize("site,role", [("staff", permissions.STAFF), ("registry", permissions.REGISTRY),
                                       ("admin", None)])
def test_every_other_site_asks_for_it(client, otp_on, make_user, superuser, site, role):
    user = superuser if role is None else make_user(role)
    client.force_login(user)
    response = client.get(f"/{site}/")
    assert response.status_code == 302 and response["Location"].startswith(f"/{site}/second-factor/")


def test_the_second_factor_page_is_for_signed_in_people_of_the_site(client, otp_on, officer):
    response = client.get("/finance/second-factor/")
    assert response.status_code == 302 and "/finance/login/" in response["Location"]
    client.force_login(officer)
    response = client.get("/staff/second-factor/")      # not a staff member
    assert "/staff/login/" in response["Location"]


def test_off_the_sites_need_no_second_factor(client, officer):
    client.force_login(officer)
    assert client.get("/finance/").status_code == 200


def test_an_administrator_resets_a_second_factor_and_the_person_enrols_again(client, otp_on, officer, enrolled,
                                                                              superuser):
    admin = type(client)()
    admin.force_login(superuser)
    from django_otp import DEVICE_ID_SESSION_KEY
    # the administrator's own session has given its second factor
    own = TOTPDevice.objects.create(user=superuser, name="Authenticator app", confirmed=True)
    session = admin.session
    session[DEVICE_ID_SESSION_KEY] = own.persistent_id
    session.save()
    response = admin.post("/admin/core/user/", {"action": "reset_second_factor", "_selected_action": [officer.pk]},
                          follow=True)
    assert f"{officer.email}: second factor reset" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=officer).exists()
    assert not StaticDevice.objects.filter(user=officer).exists()
    assert officer.history.first().history_change_reason == "Second factor reset"
    assert officer.history.first().history_user == superuser
    sign_in(client, "finance", officer.email, PASSWORD)
    assert 'id="otp-enrol"' in client.get("/finance/second-factor/").content.decode()
