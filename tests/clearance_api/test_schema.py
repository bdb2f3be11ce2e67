"""The schema (/api/schema/) documents every operation with its request and responses, and the
error responses in the one shape."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_every_operation_lists_its_errors_in_the_error_shape(schema):
    error_ref = "#/components/schemas/Error"
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"detail", "errors"}
    for url, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, url)
            assert "400" in responses and "429" in responses, (method, url)
            if "{" in url:
                assert "404" in responses, (method, url)
            # public: signing in, and Daraja's callbacks (a secret in the path and an address allow-list)
            if url not in ("/api/auth/token/", "/api/auth/token/refresh/") and not url.startswith("/api/mpesa/"):
                assert "401" in responses and "403" in responses, (method, url)
            for code, response in responses.items():
                if code[0] in "45":
                    assert response["content"]["application/json"]["schema"]["$ref"] == error_ref, (method, url, code)


def test_both_credentials_are_security_schemes(schema):
    assert set(schema["components"]["securitySchemes"]) == {"jwtAuth", "ApiKey"}
    assert {"jwtAuth": []} in schema["paths"]["/api/clearances/"]["get"]["security"]
    assert {"ApiKey": []} in schema["paths"]["/api/clearances/"]["get"]["security"]


def test_swagger_ui_serves_its_files_from_this_origin(api):
    page = api.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "https://" not in page.split("<body")[0]           # no CDN in the head
