"""Sign-in lockout (django-axes) wired to Clearance's own notions: the client IP of core.history
(one notion of "where from" for history and for lockouts), the email as typed (trimmed, lower-case),
and a lockout that reads as a sentence on the sign-in page of whichever site it happened on."""
from __future__ import annotations

from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpResponse


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, first in AUTHENTICATION_BACKENDS. A sign-in without a request (the test client's
    login(), a management command) has no address to count against and is passed on to the next
    backend instead of raising; every web sign-in carries its request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def normalised_username(request, credentials=None) -> str | None:
    """`AXES_USERNAME_CALLABLE`: " Lib@Clearance.TEST " and "lib@clearance.test" are one account,
    so changing the case of the email does not start a fresh count."""
    if credentials and credentials.get("username") is not None:
        value = credentials["username"]
    else:
        value = getattr(request, "POST", {}).get("username")
    return value.strip().lower() if isinstance(value, str) else None


def humanise(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"{hours} hours"


def lockout_message(request=None) -> str:
    limit = settings.AXES_FAILURE_LIMIT
    cool_off = get_cool_off(request)
    how_long = (f"for {humanise(cool_off)}" if cool_off else "until the IT office unlocks it")
    return (f"Too many failed sign-ins ({limit} in a row): this account is locked on this device's "
            f"network address {how_long}. If you cannot wait, ask the IT office to unlock it.")


def lockout_response(request, original_response=None, credentials=None):
    """`AXES_LOCKOUT_CALLABLE`. The sign-in forms of the sites already show `lockout_message` (their
    form refuses with it), and so does the API's token request (clearance_api/auth.py, in its JSON
    error): keep that answer, as 429. Anything else gets the sentence as text."""
    status = settings.AXES_HTTP_RESPONSE_CODE
    if original_response is not None and original_response.get("Content-Type", "").startswith(
            ("text/html", "application/json")):
        original_response.status_code = status
        return original_response
    return HttpResponse(lockout_message(request), status=status, content_type="text/plain; charset=utf-8")
