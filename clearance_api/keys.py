"""API keys: a system sends `Authorization: Api-Key <key>` and is authenticated as the account the
key is bound to (core.models.ApiKey.user), with `request.auth` the key. Created and revoked in
/admin/ (clearance_admin/superuser.py) through core/services/api_keys.py."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from core.models import ApiKey

KEYWORD = "Api-Key"
INVALID = _("This API key is not valid: it is unknown, revoked or expired, or its account is disabled.")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """One query: the key's row by its prefix, with its user. A key is refused when it is revoked,
    has expired or its account is inactive — with one message for all, so a caller learns nothing
    about which keys exist."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the key as `Authorization: Api-Key <key>`."))
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID)
        prefix, dot, _secret = key.partition(".")
        if not dot or not prefix or len(prefix) > 8:
            raise exceptions.AuthenticationFailed(INVALID)
        api_key = (ApiKey.objects.select_related("user")
                   .filter(prefix=prefix, revoked=False).first())
        if api_key is None or api_key.has_expired or not api_key.user.is_active or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(INVALID)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return KEYWORD


def is_key(request) -> bool:
    """Is this request made with an API key (a system), not a person's token?"""
    return isinstance(getattr(request, "auth", None), ApiKey)
