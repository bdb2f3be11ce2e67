"""The OpenAPI 3 schema (drf-spectacular): every operation also lists the error responses it can
give, all in the one error shape (clearance_api/errors.py), so a client and Schemathesis can check
them; and the API key's security scheme."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from .keys import KEYWORD


class ErrorSerializer(serializers.Serializer):
    """Every error: a sentence, and the fields to blame (empty when none is)."""

    detail = serializers.CharField(help_text="What went wrong, for a person to read.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text='Messages by field, e.g. {"response": ["Write a response …"]}; '
                                             "rows of a list as `rows[2].amount`.")

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    "400": "The request is malformed or refused (see `detail` and `errors`); nothing was changed.",
    "401": "No credentials, or a token or key that is expired, tampered with or revoked.",
    "403": "Signed in, but this is not for your role.",
    "404": "Nothing here, or nothing of yours (another person's ids are answered the same way).",
    "429": "Too many requests, or too many failed sign-ins; `Retry-After` says when to try again.",
}


class AutoSchema(SpectacularAutoSchema):
    """REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]: adds the error responses to every operation (an
    operation's own extend_schema(responses=…) wins for the codes it names)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        public = all(isinstance(p, AllowAny) for p in self.view.get_permissions())
        codes = ["400", "429"]
        if not public:
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "clearance_api.keys.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": f"`{KEYWORD} <key>`: a system's key, created in /admin/ (README \"The API\")."}
