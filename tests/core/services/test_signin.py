"""core.services.signin: what each refuses, and what it leaves behind."""
from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.services import signin

pytestmark = pytest.mark.django_db


def code(device):
    return f"{totp(device.bin_key):06d}"


def attempt(username, ip):
    return AccessAttempt.objects.create(username=username, ip_address=ip, user_agent="test", get_data="",
                                        post_data="", http_accept="", path_info="/staff/login/",
                                        failures_since_start=5, attempt_time=timezone.now())


def test_a_new_session_never_gets_a_secret_another_session_was_shown(make_user):
    user = make_user()
    first = signin.second_factor_start(user=user)
    assert signin.second_factor_start(user=user, device_id=first.pk).pk == first.pk   # same session: same key
    other = signin.second_factor_start(user=user)                                    # another session
    assert other.pk != first.pk and other.key != first.key
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [other.pk]


def test_confirming_issues_new_recovery_codes_and_refuses_a_second_authenticator(make_user):
    user = make_user()
    StaticToken.objects.create(device=StaticDevice.objects.create(user=user, name="old"), token="oldcode2")
    device = signin.second_factor_start(user=user)
    assert signin.second_factor_confirm(device=device, token="12345x").error
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    result = signin.second_factor_confirm(device=device, token=code(device))
    assert len(result.recovery_codes) == 10 and len(set(result.recovery_codes)) == 10
    assert set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == set(result.recovery_codes)
    with pytest.raises(ValidationError):
        signin.second_factor_start(user=user)


def test_a_recovery_code_works_once_and_an_app_code_not_twice(make_user):
    user = make_user()
    device = signin.second_factor_start(user=user)
    codes = signin.second_factor_confirm(device=device, token=code(device)).recovery_codes
    assert signin.second_factor_verify(user=user, token=codes[0].upper()).recovery_codes_left == 9
    assert signin.second_factor_verify(user=user, token=codes[0]).device is None
    # the code that confirmed the device cannot be replayed
    assert signin.second_factor_verify(user=user, token=code(device)).device is None


def test_reset_removes_both_devices_and_is_in_history(make_user, superuser):
    user = make_user()
    device = signin.second_factor_start(user=user)
    signin.second_factor_confirm(device=device, token=code(device))
    assert signin.second_factor_reset(user=user, acting_user=superuser) is True
    assert not TOTPDevice.objects.filter(user=user).exists() and not StaticDevice.objects.filter(user=user).exists()
    last = user.history.first()
    assert (last.history_change_reason, last.history_user) == ("Second factor reset", superuser)
    assert signin.second_factor_reset(user=user, acting_user=superuser) is False


def test_unlock_one_address_or_every_address(make_user, superuser):
    user = make_user(email="lib@clearance.test")
    attempt(user.email, "192.0.2.1")
    attempt(user.email, "192.0.2.2")
    attempt("someone@else.test", "192.0.2.1")
    assert signin.signin_unlock(username="LIB@clearance.test", ip="192.0.2.1", acting_user=superuser) == 1
    assert user.history.first().history_change_reason == "Sign-in unlocked from 192.0.2.1"
    assert signin.signin_unlock(user=user, acting_user=superuser) == 1
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["someone@else.test"]
    # an email no account has is unlocked too (nothing to record)
    assert signin.signin_unlock(username="someone@else.test", acting_user=superuser) == 1
    with pytest.raises(ValidationError):
        signin.signin_unlock(username=" ", acting_user=superuser)
