"""The M-PESA Daraja C2B callbacks: /api/mpesa/<secret>/c2b/validation/ and …/confirmation/.

Safaricom's servers call these, not a person: no authentication classes and no CSRF; instead the
secret in the path (MPESA_CALLBACK_SECRET, compared in constant time) and the allow-list of source
addresses (MPESA_ALLOWED_IPS, the client address as core.history.client_ip reads it). A wrong
secret, an unlisted address or callbacks switched off (no secret set) answer 404, as if nothing
were there. The work is core/services/mpesa.py's; these views parse the body and answer in
Daraja's shape, with the project's error fields (`detail`, `errors`) beside it on a 400.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import logging

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.history import client_ip
from core.services.mpesa import OTHER_ERROR, C2BPayloadError, mpesa_c2b_confirm, mpesa_c2b_validate

from .schema import ErrorSerializer

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024        # a C2B callback is well under 1 KB


class RawBodyParser(BaseParser):
    """Leaves the body to the view: a malformed one must get a Daraja-shaped 400, whatever the
    content type Safaricom (or anyone) sends."""
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


def _networks():
    out = []
    for item in settings.MPESA_ALLOWED_IPS:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            log.warning("MPESA_ALLOWED_IPS: %r is not an address or network", item)
    return out


def _allowed(request, secret: str) -> bool:
    expected = settings.MPESA_CALLBACK_SECRET
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        return False
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        ip = None
    if ip is None or not any(ip in network for network in _networks()):
        # the secret is right: either Safaricom's addresses changed or the secret leaked
        log.warning("M-PESA callback with the right secret from %s, not in MPESA_ALLOWED_IPS: refused", address)
        return False
    return True


def _refusal(code, detail: str, errors: dict | None = None, status: int = 400) -> Response:
    return Response({"ResultCode": code, "ResultDesc": "Rejected", "detail": detail, "errors": errors or {}},
                    status=status)


C2B_EXAMPLE = {
    "TransactionType": "Pay Bill", "TransID": "RKTQDM7W6S", "TransTime": "20191122063845",
    "TransAmount": "10", "BusinessShortCode": "600638", "BillRefNumber": "SCE/CS/0001/2022",
    "InvoiceNumber": "", "OrgAccountBalance": "49197.00", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126",
    "FirstName": "John", "MiddleName": "", "LastName": "Doe",
}
C2B_REQUEST = inline_serializer("MpesaC2BCallback", fields={
    "TransactionType": serializers.CharField(required=False, allow_blank=True),
    "TransID": serializers.CharField(help_text="The M-PESA code: 10 letters or digits."),
    "TransTime": serializers.CharField(help_text="YYYYMMDDHHmmss, Nairobi time."),
    "TransAmount": serializers.CharField(help_text="The amount in KES, e.g. \"200.00\"."),
    "BusinessShortCode": serializers.CharField(required=False, allow_blank=True),
    "BillRefNumber": serializers.CharField(allow_blank=True, help_text="The account the payer typed: a registration "
                                                                       "number, any case, spaces allowed."),
    "InvoiceNumber": serializers.CharField(required=False, allow_blank=True),
    "OrgAccountBalance": serializers.CharField(required=False, allow_blank=True),
    "ThirdPartyTransID": serializers.CharField(required=False, allow_blank=True),
    "MSISDN": serializers.CharField(required=False, allow_blank=True),
    "FirstName": serializers.CharField(required=False, allow_blank=True),
    "MiddleName": serializers.CharField(required=False, allow_blank=True),
    "LastName": serializers.CharField(required=False, allow_blank=True),
})
C2B_ANSWER = inline_serializer("MpesaC2BAnswer", fields={
    "ResultCode": serializers.JSONField(help_text="0 (accepted) or a Daraja rejection code: C2B00011 invalid MSISDN, "
                                                  "C2B00012 invalid account number, C2B00013 invalid amount, "
                                                  "C2B00016 other error."),
    "ResultDesc": serializers.CharField(help_text="Accepted or Rejected."),
})
SCHEMA = dict(
    request=C2B_REQUEST,
    responses={400: OpenApiResponse(ErrorSerializer, description="Not a C2B callback (malformed JSON, a field "
                                                                 "missing or of the wrong type): nothing is recorded. "
                                                                 "The error shape, with Daraja's `ResultCode` (the "
                                                                 "rejection code that fits) and `ResultDesc` beside "
                                                                 "`detail` and `errors`."),
               404: OpenApiResponse(ErrorSerializer, description="Wrong secret, an address not allowed, or callbacks off.")},
    examples=[OpenApiExample("Daraja's C2B example", value=C2B_EXAMPLE, request_only=True)],
    tags=["M-PESA"], auth=[],
)


class C2BCallbackView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    parser_classes = [RawBodyParser]
    renderer_classes = [JSONRenderer]

    def handle(self, request, payload) -> Response:
        raise NotImplementedError

    def post(self, request, secret: str):
        if not _allowed(request, secret):
            raise Http404("Not found.")
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            return _refusal(OTHER_ERROR, f"The body must be a JSON object of at most {MAX_BODY // 1024} KB.")
        try:
            payload = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _refusal(OTHER_ERROR, "The body is not JSON (a Daraja C2B callback is a JSON object).")
        try:
            return self.handle(request, payload)
        except C2BPayloadError as exc:
            return _refusal(exc.result_code, "This is not a Daraja C2B callback: nothing was recorded.",
                            exc.message_dict)


class C2BValidationView(C2BCallbackView):
    """Daraja asks whether a payment may go through; accepted when the account is a registration number."""

    @extend_schema(operation_id="mpesa_c2b_validation", summary="M-PESA C2B validation (Daraja calls this)",
                   description="Accepted (`ResultCode` 0) when `BillRefNumber` is one student's registration number "
                               "(upper or lower case, with or without spaces); otherwise rejected with C2B00012 "
                               "(invalid account number), so the payer is told to retype it. Nothing is written.",
                   **{**SCHEMA, "responses": {200: C2B_ANSWER, **SCHEMA["responses"]}})
    def post(self, request, secret: str):
        return super().post(request, secret)

    def handle(self, request, payload):
        return Response(mpesa_c2b_validate(payload=payload).answer)


class C2BConfirmationView(C2BCallbackView):
    """Daraja says a payment went through: recorded once per TransID (a replay answers success)."""

    @extend_schema(operation_id="mpesa_c2b_confirmation", summary="M-PESA C2B confirmation (Daraja calls this)",
                   description="Records the payment, verified, for the student whose registration number "
                               "`BillRefNumber` is, with history naming M-PESA; an account that names no student "
                               "for certain is kept for finance (/finance/ → M-PESA confirmations). Once per "
                               "`TransID`: a replay answers success and records nothing more.",
                   **{**SCHEMA, "responses": {200: C2B_ANSWER, **SCHEMA["responses"]}})
    def post(self, request, secret: str):
        return super().post(request, secret)

    def handle(self, request, payload):
        return Response(mpesa_c2b_confirm(payload=payload, source_ip=client_ip(request)).answer)
