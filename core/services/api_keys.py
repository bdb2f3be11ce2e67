"""API keys for systems (core.models.ApiKey): created and revoked by an administrator in /admin/.
A key acts as the account it is bound to, so what it may do is what that account's role and
offices allow (core.permissions); nothing here grants anything."""
from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import permissions
from core.history import save_tracked, tracked
from core.models import ApiKey

NAME_MAX_LENGTH = 50


def api_key_check(*, name: str, user, expires_at: datetime.datetime | None = None) -> str:
    """What api_key_create refuses (the /admin/ form asks it first, for its messages); returns the
    name trimmed. Refused: no name or one too long; an inactive account; a superuser account (a
    system gets one role's rights, never everything); an account with no role or more than one; an
    expiry in the past."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the key after the system that will use it."}, code="name_required")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": f"At most {NAME_MAX_LENGTH} characters."}, code="name_too_long")
    if user is None or not user.is_active:
        raise ValidationError({"user": "Bind the key to an active account."}, code="inactive")
    if user.is_superuser:
        raise ValidationError({"user": "A key cannot act as a superuser: bind it to a system account that has one "
                                       "role (and its offices), set up like a person of that role."},
                              code="superuser")
    roles = permissions.roles_of(user)
    if len(roles) != 1:
        raise ValidationError({"user": f"Bind the key to an account with exactly one role (this one has "
                                       f"{', '.join(sorted(roles)) or 'none'}): the key does what that role may."},
                              code="roles")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expiry_date": "The expiry must be in the future."}, code="expired")
    return name


@transaction.atomic
def api_key_create(*, name: str, user, acting_user, expires_at: datetime.datetime | None = None) -> tuple[ApiKey, str]:
    """A new key bound to `user`; returns the row and the key itself, which is not stored (only its
    hash) and so can be shown only now. Refused as api_key_check says."""
    name = api_key_check(name=name, user=user, expires_at=expires_at)
    api_key = ApiKey(name=name, user=user, expiry_date=expires_at, created_by=acting_user)
    key = ApiKey.objects.assign_key(api_key)
    tracked(api_key, user=acting_user, reason=f"API key created for {user.email}")
    api_key.save()
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, acting_user, reason: str = "") -> ApiKey:
    """Revoke the key: every request with it is refused from now on (this cannot be undone).
    Revoking a revoked key changes nothing."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked:
        return api_key
    api_key.revoked, api_key.revoked_at, api_key.revoked_by = True, timezone.now(), acting_user
    save_tracked(api_key, user=acting_user, reason=reason or "API key revoked",
                 update_fields=["revoked", "revoked_at", "revoked_by"])
    return api_key
