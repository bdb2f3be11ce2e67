"""Fixtures of the API tests: an API client, tokens for a user, an API key bound to a user."""
from __future__ import annotations

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core.services.api_keys import api_key_create


@pytest.fixture(autouse=True)
def _fresh_counters():
    # throttles count in the (locmem) cache; each test starts from zero
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def api():
    return APIClient()


def bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}


def key_header(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Api-Key {key}"}


@pytest.fixture
def as_user(api):
    """as_user(user) → an APIClient sending that user's access token."""
    def make(user):
        client = APIClient()
        client.credentials(**bearer(user))
        return client
    return make


@pytest.fixture
def make_key(superuser):
    """make_key(user) → (ApiKey, key) bound to that (system) user."""
    def make(user, name="Library system", **kwargs):
        return api_key_create(name=name, user=user, acting_user=superuser, **kwargs)
    return make


@pytest.fixture
def as_key(make_key):
    """as_key(user) → an APIClient sending a new API key of that user."""
    def make(user):
        _, key = make_key(user)
        client = APIClient()
        client.credentials(**key_header(key))
        return client
    return make
