"""One error shape for every error (clearance_api/errors.py): DRF's, the services' Django
ValidationError, Http404/PermissionDenied, bad values deep down, the unexpected (JSON 500) and an
/api/ address that matches nothing — never an HTML page."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions

from clearance_api.errors import exception_handler, validation_body

pytestmark = pytest.mark.django_db


def handled(exc):
    response = exception_handler(exc, {})
    return response.status_code, response.data


def test_a_services_refusal_without_fields_is_a_400_sentence():
    assert handled(ValidationError("Only a rejected item can be re-submitted.")) == (
        400, {"detail": "Only a rejected item can be re-submitted.", "errors": {}})


def test_a_services_refusal_by_field_names_the_fields():
    status, body = handled(ValidationError({"name": "Too long.", "user": ["Inactive.", "Superuser."]}))
    assert status == 400 and body["errors"] == {"name": ["Too long."], "user": ["Inactive.", "Superuser."]}
    assert body["detail"] == "The request has errors; see `errors`."


def test_one_field_wrong_says_which_in_the_detail():
    assert validation_body({"cycle": ["No such cycle."]}) == {"detail": "cycle: No such cycle.",
                                                               "errors": {"cycle": ["No such cycle."]}}


def test_nested_rows_are_flattened_with_their_index():
    body = validation_body({"rows": [{}, {"amount": ["Not a number."]}], "non_field_errors": ["Fix the rows."]})
    assert body == {"detail": "Fix the rows.", "errors": {"rows[1].amount": ["Not a number."]}}


@pytest.mark.parametrize("exc, status", [(Http404("No such item of yours."), 404), (PermissionDenied("No."), 403),
                                         (exceptions.NotAuthenticated(), 401), (exceptions.Throttled(wait=3), 429),
                                         (OverflowError("int too large"), 400), (ValueError("bad"), 400)])
def test_each_kind_of_error_has_the_shape(exc, status):
    got, body = handled(exc)
    assert got == status and set(body) == {"detail", "errors"} and body["detail"]


def test_the_unexpected_is_a_json_500_and_a_dead_database_a_503(monkeypatch):
    logged = []
    monkeypatch.setattr("clearance_api.errors.log.error", lambda *args, **kwargs: logged.append(args))
    assert handled(RuntimeError("bug")) == (500, {"detail": "Something went wrong on our side; it has been logged.",
                                                  "errors": {}})
    assert logged and logged[0][0] == "API error"
    assert handled(OperationalError("connection refused"))[0] == 503


def test_an_api_address_that_matches_nothing_is_json(api):
    response = api.get("/api/no-such-thing/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "There is no such API endpoint; see /api/docs/.", "errors": {}}


def test_an_id_too_large_for_the_database_is_a_400(as_user, student):
    response = as_user(student.user).post(f"/api/notifications/{2**70}/read/")
    assert response.status_code in (400, 404) and set(response.json()) == {"detail", "errors"}


def test_a_method_not_allowed_is_405_in_the_shape(as_user, student):
    response = as_user(student.user).delete("/api/clearances/")
    assert response.status_code == 405 and set(response.json()) == {"detail", "errors"}
