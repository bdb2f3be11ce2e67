"""Role × endpoint for the staff and system endpoints, as the sites' access matrix: a person with a
token and a system with an API key bound to a clerk's account get the same answers; no one gets a
5xx. (Bodies are empty: a 400 means the role passed the gate and the body was refused.)"""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/approvals/"),
    ("post", "/api/approvals/bulk/"),
    ("get", "/api/holds/"),
    ("post", "/api/holds/"),
    ("post", "/api/holds/import/"),
    ("post", "/api/balances/import/"),
    ("get", "/api/reports/pending_by_department/"),
    ("get", "/api/reports/financial_summary/"),
    ("get", "/api/reports/graduation_list/"),
    ("get", "/api/gowns/"),
    ("post", "/api/gowns/"),
]
#            approvals bulk holds place import balances pending financial graduation gowns issue
EXPECTED = {
    "anonymous": [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401],
    "student":   [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403],
    "clerk":     [200, 400, 200, 400, 400, 403, 200, 404, 404, 403, 403],
    "clerk_key": [200, 400, 200, 400, 400, 403, 200, 404, 404, 403, 403],
    "finance":   [200, 400, 200, 400, 400, 400, 200, 200, 404, 403, 403],   # reviews FIN: its pending too
    "registry":  [403, 403, 403, 403, 403, 403, 200, 200, 200, 403, 403],
    "gown":      [200, 400, 200, 400, 400, 403, 200, 404, 404, 200, 400],
}


@pytest.fixture
def client_of(as_user, as_key, make_reviewer, student, finance_user, registry_user, offices):
    def make(who):
        if who == "anonymous":
            return APIClient()
        if who == "student":
            return as_user(student.user)
        if who == "clerk":
            return as_user(make_reviewer("LIB"))
        if who == "clerk_key":
            return as_key(make_reviewer("LIB", email="library-system@clearance.test"))
        if who == "finance":
            return as_user(finance_user)
        if who == "registry":
            return as_user(registry_user)
        return as_user(make_reviewer("GOWN"))
    return make


@pytest.mark.parametrize("who", list(EXPECTED))
def test_role_by_endpoint(client_of, who):
    client = client_of(who)
    got = [getattr(client, method)(url, {}, format="json").status_code if method == "post"
           else client.get(url).status_code for method, url in ENDPOINTS]
    assert got == EXPECTED[who], list(zip([u for _, u in ENDPOINTS], got, EXPECTED[who]))
