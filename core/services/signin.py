"""Writes about signing in: unlocking a locked sign-in, and a person's second factor (a TOTP
authenticator plus single-use recovery codes). Each is recorded in the person's history."""
from __future__ import annotations

from dataclasses import dataclass

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.history import save_tracked

AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def _record(user, *, acting_user, reason: str) -> None:
    # nothing on the user row changes; the save writes the historical row that says what happened
    save_tracked(user, user=acting_user, reason=reason, update_fields=["is_active"])


@transaction.atomic
def signin_unlock(*, user=None, username: str | None = None, ip: str | None = None, acting_user) -> int:
    """Forget the failed sign-ins of `user` (or of the email `username`, which may name no account)
    from address `ip`, or from every address when `ip` is None; returns how many lockout records
    were removed. Recorded in the user's history when something was unlocked."""
    email = (user.email if user is not None else username or "").strip().lower()
    if not email:
        raise ValidationError("Name the account to unlock.")
    if user is None:
        user = get_user_model()._default_manager.filter(email__iexact=email).first()
    removed = axes_reset(username=email, ip=ip)
    if user is not None and removed:
        where = f" from {ip}" if ip else ""
        _record(user, acting_user=acting_user, reason=f"Sign-in unlocked{where}")
    return removed


@dataclass
class Verification:
    device: object | None = None             # the device that accepted the code
    recovery_codes_left: int | None = None   # when a recovery code was used up
    recovery_codes: list[str] | None = None  # issued at enrolment, to show once
    error: str = ""


def _clean(token: str) -> str:
    return "".join((token or "").split()).lower()


def _wait_message(until) -> str:
    seconds = max(1, int((until - timezone.now()).total_seconds() + 0.999)) if until else 1
    return f"Too many wrong codes: wait {seconds} second{'s' if seconds != 1 else ''}, then enter a new code."


def has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def second_factor_start(*, user, device_id: int | None = None) -> TOTPDevice:
    """The authenticator being enrolled: the one this session started (`device_id`), else a new one
    with a fresh secret. Unconfirmed devices of other sessions are dropped: a secret shown to
    someone else is never the one the person ends up with. Refused when one is already confirmed."""
    if has_second_factor(user):
        raise ValidationError("A second factor is already set up for this account.")
    pending = TOTPDevice.objects.filter(user=user, confirmed=False)
    device = pending.filter(pk=device_id).first() if device_id else None
    pending.exclude(pk=getattr(device, "pk", None)).delete()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


@transaction.atomic
def second_factor_confirm(*, device: TOTPDevice, token: str) -> Verification:
    """Confirm the authenticator with a code it shows, and issue new recovery codes (the old ones
    stop working): `recovery_codes` are to be shown once. A wrong code is an `error`; wrong codes
    slow the device down as at sign-in."""
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
    if device.confirmed:
        raise ValidationError("This authenticator is already confirmed.")
    allowed, why = device.verify_is_allowed()
    if not allowed:
        return Verification(error=_wait_message((why or {}).get("locked_until")))
    if not device.verify_token(_clean(token)):
        return Verification(error="That code is not right. Enter the 6-digit code the app shows now (it "
                                  "changes every 30 seconds); check that the phone's clock is right.")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    StaticDevice.objects.filter(user=device.user).delete()
    recovery = StaticDevice.objects.create(user=device.user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.OTP_RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=recovery, token=c) for c in codes])
    _record(device.user, acting_user=device.user, reason="Second factor set up")
    return Verification(device=device, recovery_codes=codes)


@transaction.atomic
def second_factor_reset(*, user, acting_user) -> bool:
    """Remove the person's authenticator and recovery codes: they set up a new one at their next
    sign-in. Returns whether they had one set up."""
    had = has_second_factor(user)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    _record(user, acting_user=acting_user, reason="Second factor reset")
    return had


def second_factor_verify(*, user, token: str) -> Verification:
    """Check a 6-digit code from the person's authenticator, or one of their recovery codes (used
    up by this). Wrong codes slow the device down (django-otp's throttling): while it is throttled
    even the right code is refused, with how long to wait."""
    token = _clean(token)
    if not token:
        return Verification(error="Enter the code.")
    # an app's code is 6 digits; a recovery code 8 letters and digits (StaticToken.random_token)
    kind = TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    waits = []
    for device in kind.objects.filter(user=user, confirmed=True).order_by("pk"):
        with transaction.atomic():
            device = type(device).objects.select_for_update().get(pk=device.pk)
            allowed, why = device.verify_is_allowed()
            if not allowed:
                waits.append((why or {}).get("locked_until"))
                continue
            if device.verify_token(token):
                left = device.token_set.count() if kind is StaticDevice else None
                return Verification(device=device, recovery_codes_left=left)
    if waits and all(waits):
        return Verification(error=_wait_message(max(waits)))
    return Verification(error="That code is not right. Enter the 6-digit code your authenticator app "
                              "shows now, or one of your recovery codes.")
