"""API keys (core/services/api_keys.py): bound to one role's account, the key returned once and
only its hash kept, revoked for good, each step in the key's history."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import ApiKey
from core.services.api_keys import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_create_returns_the_key_once_and_keeps_its_hash(superuser, make_reviewer):
    system = make_reviewer("LIB")
    api_key, key = api_key_create(name="  Library system ", user=system, acting_user=superuser)
    assert api_key.name == "Library system" and key.startswith(api_key.prefix + ".")
    assert ApiKey.objects.is_valid(key) and not ApiKey.objects.is_valid(key + "x")
    assert api_key.history.first().history_user == superuser


@pytest.mark.parametrize("change, message", [
    ({"name": "x" * 51}, "At most 50"),
    ({"expires_at": "past"}, "future"),
    ({"inactive": True}, "active account"),
])
def test_create_refuses(change, message, superuser, make_reviewer):
    system = make_reviewer("LIB")
    if change.pop("inactive", False):
        system.is_active = False
        system.save()
    if change.get("expires_at") == "past":
        change["expires_at"] = timezone.now() - timedelta(days=1)
    kwargs = {"name": "Library system", "user": system, "acting_user": superuser, **change}
    with pytest.raises(ValidationError, match=message):
        api_key_create(**kwargs)
    assert not ApiKey.objects.exists()


def test_revoke_is_for_good_and_twice_changes_nothing(superuser, make_reviewer):
    api_key, key = api_key_create(name="Library system", user=make_reviewer("LIB"), acting_user=superuser)
    api_key_revoke(api_key=api_key, acting_user=superuser)
    api_key.refresh_from_db()
    assert api_key.revoked and api_key.revoked_by == superuser and not ApiKey.objects.is_valid(key)
    revoked_at = api_key.revoked_at
    api_key_revoke(api_key=api_key, acting_user=superuser)
    api_key.refresh_from_db()
    assert api_key.revoked_at == revoked_at and api_key.history.count() == 2
    fresh = ApiKey.objects.get(pk=api_key.pk)
    fresh.revoked = False
    with pytest.raises(ValidationError):      # the package refuses un-revoking
        fresh.save()
