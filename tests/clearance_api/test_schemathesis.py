"""Schemathesis against /api/schema/ on a server this test starts (pytest-django's live server):
every operation of the schema — the ones added later included — is called with generated input,
as a student (token), an office clerk (token) and the finance office's system (API key), and each
response must be no 5xx (`not_a_server_error`) and match the schema (`response_schema_conformance`).
Few examples per operation, so it runs in well under two minutes. Run it alone with
`pytest -m schemathesis`."""
from __future__ import annotations

import pytest
import requests
import schemathesis
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from core import permissions
from core.models import User
from core.services.api_keys import api_key_create

pytestmark = [pytest.mark.schemathesis, pytest.mark.django_db(transaction=True)]

PASSWORD = "schema-pass-1"
EXAMPLES = 4
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def demo(transactional_db):
    from core.demo import seed_demo
    return seed_demo(students=20, password=PASSWORD, seed=5)


def _token(base, email):
    response = requests.post(f"{base}/api/auth/token/", json={"email": email, "password": PASSWORD}, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access']}"}


def _finance_key():
    system = User.objects.create_user(email="finance-system@clearance.test", full_name="Finance system",
                                      password=None, is_staff=True)
    system.groups.add(Group.objects.get(name=permissions.FINANCE))
    admin = User.objects.get(email="admin@clearance.test")
    _, key = api_key_create(name="Finance system", user=system, acting_user=admin)
    return {"Authorization": f"Api-Key {key}"}


def test_every_operation_gives_no_5xx_and_matches_the_schema(live_server, demo):
    base = live_server.url
    callers = {"student": _token(base, "student@clearance.test"), "clerk": _token(base, "lib@clearance.test"),
               "finance key": _finance_key()}
    schema = schemathesis.openapi.from_url(f"{base}/api/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures = []
    for operation in operations:
        for who, headers in callers.items():
            @given(case=operation.as_strategy())
            @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck))
            def run(case):
                response = case.call(base_url=base, headers=headers, timeout=30)
                case.validate_response(response, checks=CHECKS, headers=headers)
            try:
                run()
            except Exception as exc:         # collect them all, then fail with every one
                failures.append(f"{who} {operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
