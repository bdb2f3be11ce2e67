"""One error format for every error the API gives:

    {"detail": "A sentence for a person.", "errors": {"field": ["What is wrong with it."]}}

`errors` is {} when no one field is to blame. The EXCEPTION_HANDLER turns DRF's exceptions, Django's
Http404/PermissionDenied and the services' django ValidationError into it; anything unexpected is
logged and answered as JSON too (500, or 503 when the database is unreachable), never an HTML page.
"""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"
INVALID_INPUT = "The request has errors; see `errors`."
# values no field offers that a library raises deep down (an id too large for the database, …)
BAD_INPUT = (ValueError, OverflowError, DataError)


def body(detail: str, errors: dict[str, list[str]] | None = None) -> dict:
    return {"detail": str(detail), "errors": errors or {}}


def _flatten(data, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error data → {"field": [...], "rows[2].amount": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(data, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in data):
            out.setdefault(prefix or NON_FIELD, []).extend(str(v) for v in data)
        else:
            for i, value in enumerate(data):
                if value in ({}, [], None):
                    continue
                for k, v in _flatten(value, f"{prefix}[{i}]" if prefix else f"[{i}]").items():
                    out.setdefault(k, []).extend(v)
    elif data is not None:
        out.setdefault(prefix or NON_FIELD, []).append(str(data))
    return out


def validation_body(data) -> dict:
    """The body of a 400 from DRF's ValidationError data (a dict by field, or a list)."""
    errors = _flatten(data)
    general = errors.pop(NON_FIELD, [])
    if general:
        return body(" ".join(general), errors)
    if len(errors) == 1:
        (field, messages), = errors.items()
        return body(f"{field}: {' '.join(messages)}", errors)
    return body(INVALID_INPUT, errors)


def from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A service's refusal (django ValidationError, with or without fields) as DRF's 400."""
    if hasattr(exc, "error_dict"):
        data = {(NON_FIELD if field == "__all__" else field): [str(m) for m in errs]
                for field, errs in exc.message_dict.items()}
    else:
        data = {NON_FIELD: [str(m) for m in exc.messages]}
    return exceptions.ValidationError(data)


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]."""
    if isinstance(exc, DjangoValidationError):
        exc = from_django(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) if str(exc) else None)
    elif isinstance(exc, BAD_INPUT):
        log.info("bad input: %s: %s", type(exc).__name__, exc)
        exc = exceptions.ValidationError({NON_FIELD: ["A value in the request cannot be used here."]})
    response = drf_exception_handler(exc, context)
    if response is None:
        if isinstance(exc, OperationalError):
            log.warning("database unavailable: %s", exc)
            return Response(body("The service is unavailable for a moment; try again shortly."),
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        log.error("API error", exc_info=(type(exc), exc, exc.__traceback__))
        return Response(body("Something went wrong on our side; it has been logged."),
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_body(response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = body(detail if isinstance(detail, str) else " ".join(map(str, detail)))
    return response


def json_error(request, status_code: int, detail: str) -> JsonResponse:
    """For errors answered outside DRF's views (an /api/ URL that matches nothing, a 500 handler)."""
    return JsonResponse(body(detail), status=status_code)
