"""The Daraja C2B callbacks over HTTP: the secret in the path, the source allow-list, Daraja's
example payloads, the replay, and bad bodies (each a 4xx or Daraja's rejection, nothing written)."""
from __future__ import annotations

import io
import json
import logging

import pytest
from django.urls import reverse

from core.logs import SecretFilter
from core.models import MpesaConfirmation, Payment
from tests import factories
from tests.core.services.test_mpesa import daraja

pytestmark = pytest.mark.django_db
SECRET = "s3cret-callback-path-0123456789"
SAFARICOM = "196.201.214.200"


@pytest.fixture(autouse=True)
def wired(settings):
    settings.MPESA_CALLBACK_SECRET = SECRET
    settings.MPESA_ALLOWED_IPS = [SAFARICOM, "10.1.0.0/16"]
    settings.TRUSTED_PROXY_COUNT = 0


@pytest.fixture
def graduand(db):
    return factories.student_with_reg("SCE/CS/0001/2022")


@pytest.fixture
def console():
    """What the console handler (settings.LOGGING, with its filters) writes, as text."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
                   and any(isinstance(f, SecretFilter) for f in h.filters))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield buffer
    handler.setStream(old)


def url(which, secret=SECRET):
    return reverse(f"api:mpesa:c2b-{which}", args=[secret])


def post(client, which, body, *, secret=SECRET, ip=SAFARICOM, raw=None, **extra):
    data = raw if raw is not None else json.dumps(body)
    return client.post(url(which, secret), data=data, content_type="application/json", REMOTE_ADDR=ip, **extra)


def test_validation_accepts_the_registration_number_in_lower_case_with_spaces(client, graduand):
    r = post(client, "validation", daraja(BillRefNumber=" sce/cs/0001/2022 "))
    assert r.status_code == 200 and r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}


def test_validation_of_darajas_example_account_is_rejected_as_an_invalid_account(client, graduand):
    r = post(client, "validation", daraja())        # "invoice008": no student's number
    assert r.status_code == 200 and r.json() == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    assert not MpesaConfirmation.objects.exists()


def test_confirmation_records_once_and_the_replay_answers_success(client, graduand):
    body = daraja(BillRefNumber="sce/cs/0001/2022", TransAmount="5500.00")
    for _ in range(3):
        r = post(client, "confirmation", body)
        assert r.status_code == 200 and r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    p = Payment.objects.get()
    assert p.student == graduand and p.is_verified
    assert p.history.first().ip_address == SAFARICOM          # the request's address, as history records it
    assert MpesaConfirmation.objects.get().source_ip == SAFARICOM


def test_confirmation_of_an_unknown_account_is_kept_not_lost(client, graduand):
    r = post(client, "confirmation", daraja())
    assert r.status_code == 200 and r.json()["ResultCode"] == 0
    assert MpesaConfirmation.objects.get().outcome == "unmatched" and not Payment.objects.exists()


@pytest.mark.parametrize("which", ["validation", "confirmation"])
@pytest.mark.parametrize("secret", ["wrong", SECRET[:-1], SECRET + "x"])
def test_a_wrong_secret_is_a_404_and_writes_nothing(client, graduand, which, secret):
    r = post(client, which, daraja(BillRefNumber="SCE/CS/0001/2022"), secret=secret)
    assert r.status_code == 404
    assert not MpesaConfirmation.objects.exists() and not Payment.objects.exists()


@pytest.mark.parametrize("which", ["validation", "confirmation"])
def test_an_address_not_allowed_is_a_404_and_logged(client, graduand, which, console):
    r = post(client, which, daraja(BillRefNumber="SCE/CS/0001/2022"), ip="203.0.113.9")
    assert r.status_code == 404 and not Payment.objects.exists()
    logged = console.getvalue()
    assert "right secret from 203.0.113.9" in logged and "Not Found: /api/mpesa/<secret>/" in logged
    assert SECRET not in logged


def test_an_allowed_network_and_the_proxy_rule_of_client_ip(client, graduand, settings):
    assert post(client, "confirmation", daraja(BillRefNumber="SCE/CS/0001/2022"), ip="10.1.2.3").status_code == 200
    # behind one proxy the address is the one it appended, not what the caller wrote
    settings.TRUSTED_PROXY_COUNT = 1
    r = post(client, "confirmation", daraja(TransID="RKTQDM7W6T"), ip="127.0.0.1",
             HTTP_X_FORWARDED_FOR=f"{SAFARICOM}, 203.0.113.9")
    assert r.status_code == 404
    r = post(client, "confirmation", daraja(TransID="RKTQDM7W6T"), ip="127.0.0.1",
             HTTP_X_FORWARDED_FOR=f"203.0.113.9, {SAFARICOM}")
    assert r.status_code == 200


def test_callbacks_are_off_without_a_secret(client, graduand, settings):
    settings.MPESA_CALLBACK_SECRET = ""
    assert post(client, "confirmation", daraja(), secret="anything").status_code == 404
    assert not MpesaConfirmation.objects.exists()


@pytest.mark.parametrize("which", ["validation", "confirmation"])
@pytest.mark.parametrize("raw, code, field", [
    ("{not json", "C2B00016", None),
    ("", "C2B00016", None),
    ("[1, 2]", "C2B00016", "non_field_errors"),
    ('"text"', "C2B00016", "non_field_errors"),
    (json.dumps(daraja(TransAmount="abc")), "C2B00013", "TransAmount"),
    (json.dumps({k: v for k, v in daraja().items() if k != "TransID"}), "C2B00016", "TransID"),
    (json.dumps({k: v for k, v in daraja().items() if k != "TransAmount"}), "C2B00013", "TransAmount"),
    (json.dumps(daraja(TransTime="yesterday")), "C2B00016", "TransTime"),
    (json.dumps(daraja(BillRefNumber=None) | {"BillRefNumber": {"x": 1}}), "C2B00012", "BillRefNumber"),
])
def test_bad_bodies_are_a_400_in_darajas_shape_with_the_fields_and_write_nothing(client, graduand, which, raw,
                                                                               code, field):
    r = post(client, which, None, raw=raw)
    assert r.status_code == 400
    body = r.json()
    assert body["ResultCode"] == code and body["ResultDesc"] == "Rejected" and body["detail"]
    if field:
        assert field in body["errors"]
    assert not MpesaConfirmation.objects.exists() and not Payment.objects.exists()


def test_a_huge_body_is_refused(client, graduand):
    r = post(client, "confirmation", None, raw=json.dumps(daraja(Padding="x" * 70_000)))
    assert r.status_code == 400 and not MpesaConfirmation.objects.exists()


def test_other_methods_are_refused(client, graduand):
    assert client.get(url("confirmation"), REMOTE_ADDR=SAFARICOM).status_code == 405
    assert client.get(url("confirmation", "wrong"), REMOTE_ADDR=SAFARICOM).status_code in (404, 405)


def test_the_logs_never_show_the_secret(client, graduand, console):
    post(client, "confirmation", daraja())
    post(client, "confirmation", None, raw="{bad")          # Django's own "Bad Request: <path>" line
    logged = console.getvalue()
    assert "POST /api/mpesa/<secret>/c2b/confirmation/ 200" in logged
    assert "Bad Request: /api/mpesa/<secret>/c2b/confirmation/" in logged
    assert SECRET not in logged
