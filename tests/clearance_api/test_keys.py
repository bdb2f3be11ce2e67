"""API keys: bound to one system account, created (shown once) and revoked in /admin/, refused
once revoked or expired or when the account is disabled; what a key may do is its account's."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from core import permissions
from core.models import ApiKey
from core.services.api_keys import api_key_create, api_key_revoke

from .conftest import key_header

pytestmark = pytest.mark.django_db


def test_a_key_authenticates_as_its_account(make_key, make_reviewer):
    system = make_reviewer("LIB", email="library-system@clearance.test")
    _, key = make_key(system)
    me = APIClient().get("/api/auth/me/", **key_header(key))
    assert me.status_code == 200
    assert me.json()["email"] == system.email and me.json()["via"] == "api_key" and me.json()["offices"] == ["LIB"]


def test_only_a_hash_is_stored(make_key, make_reviewer):
    api_key, key = make_key(make_reviewer("LIB"))
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert key.split(".")[1] not in stored.hashed_key and key not in str(stored.__dict__)


@pytest.mark.parametrize("spoil", ["revoke", "expire", "disable", "wrong_secret", "unknown"])
def test_a_revoked_expired_or_wrong_key_or_a_disabled_account_is_401(spoil, make_key, make_reviewer, superuser):
    system = make_reviewer("LIB")
    api_key, key = make_key(system)
    if spoil == "revoke":
        api_key_revoke(api_key=api_key, acting_user=superuser)
    elif spoil == "expire":
        ApiKey.objects.filter(pk=api_key.pk).update(expiry_date=timezone.now() - timedelta(minutes=1))
    elif spoil == "disable":
        system.is_active = False
        system.save()
    elif spoil == "wrong_secret":
        key = key.split(".")[0] + ".x" + key.split(".")[1][1:]
    else:
        key = "nope.nope"
    response = APIClient().get("/api/auth/me/", **key_header(key))
    assert response.status_code == 401
    assert response.json() == {"detail": "This API key is not valid: it is unknown, revoked or expired, or its "
                                         "account is disabled.", "errors": {}}


@pytest.mark.parametrize("header", ["Api-Key", "Api-Key a b", "Api-Key \xff"])
def test_a_malformed_key_header_is_401(header):
    response = APIClient().get("/api/auth/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_a_key_is_refused_for_a_superuser_an_account_without_one_role_or_no_name(superuser, make_user, make_reviewer):
    with pytest.raises(ValidationError, match="superuser"):
        api_key_create(name="x", user=superuser, acting_user=superuser)
    with pytest.raises(ValidationError, match="exactly one role"):
        api_key_create(name="x", user=make_user(), acting_user=superuser)
    both = make_reviewer("LIB")
    both.groups.add(*__import__("django.contrib.auth.models").contrib.auth.models.Group.objects.filter(
        name=permissions.FINANCE))
    with pytest.raises(ValidationError, match="exactly one role"):
        api_key_create(name="x", user=both, acting_user=superuser)
    with pytest.raises(ValidationError, match="Name the key"):
        api_key_create(name="  ", user=make_reviewer("SPT"), acting_user=superuser)
    assert not ApiKey.objects.exists()


def test_created_in_admin_the_key_is_shown_once_and_works(client, superuser, make_reviewer):
    system = make_reviewer("LIB", email="library-system@clearance.test")
    client.force_login(superuser)
    response = client.post("/admin/core/apikey/add/", {"name": "Library system", "user": system.pk,
                                                      "expiry_date_0": "", "expiry_date_1": ""}, follow=True)
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    messages = [str(m) for m in response.context["messages"]]
    key = next(m for m in messages if "cannot be shown again" in m).split("<code>")[1].split("</code>")[0]
    assert key.startswith(api_key.prefix + ".")
    assert APIClient().get("/api/auth/me/", **key_header(key)).json()["email"] == system.email
    assert api_key.created_by == superuser and api_key.history.first().history_user == superuser
    # the page shows it no more
    assert key not in client.get(f"/admin/core/apikey/{api_key.pk}/change/").content.decode()


def test_the_admin_form_refuses_a_superuser_account(client, superuser, make_user):
    client.force_login(superuser)
    other = make_user(is_superuser=True, is_staff=True)
    response = client.post("/admin/core/apikey/add/", {"name": "x", "user": other.pk})
    assert response.status_code == 200 and not ApiKey.objects.exists()


def test_revoked_in_admin_the_key_stops_working(client, superuser, make_key, make_reviewer):
    api_key, key = make_key(make_reviewer("LIB"))
    client.force_login(superuser)
    response = client.post("/admin/core/apikey/", {"action": "revoke_selected", "_selected_action": [api_key.pk]},
                           follow=True)
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked and api_key.revoked_by == superuser
    assert APIClient().get("/api/auth/me/", **key_header(key)).status_code == 401


def test_api_keys_are_superusers_only(client, make_reviewer):
    reviewer = make_reviewer("LIB", is_staff=True)
    client.force_login(reviewer)
    assert client.get("/admin/core/apikey/").status_code in (302, 403)
