"""Stored files in an S3-compatible bucket (STORAGES through django-storages, README "Files on
several hosts"), against a real S3 server on this machine: moto's server mode on a free port.

The round trip goes through the service (upload) and the site's download view (download), with the
default storage pointed at the bucket, as STORAGE_BACKEND=s3 would set it."""
from __future__ import annotations

import re
import socket

import pytest
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from moto.server import ThreadedMotoServer  # noqa: E402

from core.models import ClearanceApproval, Payment  # noqa: E402
from core.services.payments import payment_record  # noqa: E402
from tests.conftest import PDF_BYTES  # noqa: E402

pytestmark = pytest.mark.django_db

BUCKET = "clearance-files"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A local S3 server for this module's tests."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint):
    """A fresh private bucket, the default storage pointed at it (the settings STORAGE_BACKEND=s3
    makes); the storages are rebuilt on the way in and out."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    options = {"bucket_name": BUCKET, "endpoint_url": s3_endpoint, "region_name": "us-east-1",
               "addressing_style": "path", "default_acl": "private", "querystring_auth": False,
               "file_overwrite": False, "location": "", **CREDENTIALS}
    with override_settings(STORAGES={
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }):
        # setting_changed resets django's storages and default_storage; say so if that ever stops
        assert type(storages["default"]).__name__ == "S3Storage"
        assert ClearanceApproval._meta.get_field("evidence").storage is default_storage
        yield client
    for key in _keys(client):
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_evidence_round_trip_through_the_bucket(bucket, client, clearance, approval, lib_reviewer):
    from core.services.approvals import approval_approve
    lib = approval(clearance, "LIB")
    approval_approve(approval=lib, acting_user=lib_reviewer,
                     evidence=SimpleUploadedFile("Kamau library letter.pdf", PDF_BYTES))
    lib.refresh_from_db()

    (key,) = _keys(bucket)
    assert key == lib.evidence.name
    assert re.fullmatch(r"evidence/[A-Za-z0-9_-]{22}\.pdf", key)            # nothing guessable in the key
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == PDF_BYTES
    grants = bucket.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee", {}).get("URI", "")) for g in grants)   # private

    client.force_login(lib_reviewer)
    response = client.get(reverse("staff:file_download", args=["evidence", lib.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Kamau library letter.pdf"'


def test_receipt_round_trip_and_two_uploads_of_one_name_get_two_keys(bucket, client, student, finance_user):
    payments = [payment_record(student=student, amount=100, method=Payment.Method.BANK, transaction_code=f"B-{i}",
                               acting_user=finance_user,
                               receipt=SimpleUploadedFile("receipt.pdf", PDF_BYTES + str(i).encode()))
                for i in range(2)]
    keys = _keys(bucket)
    assert sorted(keys) == sorted(p.receipt.name for p in payments) and len(set(keys)) == 2
    assert all(re.fullmatch(r"receipts/[A-Za-z0-9_-]{22}\.pdf", k) for k in keys)

    client.force_login(finance_user)
    for i, payment in enumerate(payments):
        response = client.get(reverse("finance:file_download", args=["receipt", payment.pk]))
        assert b"".join(response.streaming_content) == PDF_BYTES + str(i).encode()


def test_a_file_missing_from_the_bucket_is_a_404_not_a_500(bucket, client, student, finance_user):
    payment = payment_record(student=student, amount=100, method=Payment.Method.BANK, transaction_code="B-9",
                             acting_user=finance_user, receipt=SimpleUploadedFile("r.pdf", PDF_BYTES))
    bucket.delete_object(Bucket=BUCKET, Key=payment.receipt.name)
    client.force_login(finance_user)
    assert client.get(reverse("finance:file_download", args=["receipt", payment.pk])).status_code == 404
