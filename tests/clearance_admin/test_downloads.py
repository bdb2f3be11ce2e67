"""Stored files reach people only through each site's download view (clearance_admin/downloads.py):
the site's gate, then core.permissions.may_download for the site's role; 404 out of scope; served as
a sandboxed, nosniff attachment typed by its bytes. Nothing serves MEDIA_ROOT.

settings_test runs with DEBUG=False, so every download here works as in production.
"""
from __future__ import annotations

import importlib
import re

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import override_settings
from django.urls import Resolver404, resolve, reverse

from core import permissions
from core.models import ClearanceApproval
from tests import factories
from tests.conftest import PDF_BYTES

pytestmark = pytest.mark.django_db

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
CSV_BYTES = b"Registration number,Balance\r\nSCE/CS/0001/2022,1200\r\n"


def url(site, kind, pk):
    return reverse(f"{site}:file_download", args=[kind, pk])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def assert_served_safely(response, *, content, content_type, filename):
    assert response.status_code == 200
    assert body(response) == content
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"


def as_student(student_record):
    student_record.user.groups.add(Group.objects.get(name=permissions.STUDENT))
    return student_record.user


@pytest.fixture
def lib_evidence(clearance, approval, with_evidence):
    return with_evidence(approval(clearance, "LIB"), name="Books returned.png", content=PNG_BYTES)


# --- who gets it -----------------------------------------------------------------------------------

def test_the_office_downloads_its_evidence_as_a_sandboxed_attachment_typed_by_its_bytes(
        client, lib_reviewer, lib_evidence, settings):
    assert settings.DEBUG is False
    client.force_login(lib_reviewer)
    response = client.get(url("staff", "evidence", lib_evidence.pk))
    assert_served_safely(response, content=PNG_BYTES, content_type="image/png", filename="Books returned.png")


def test_the_registry_and_the_student_download_the_evidence_on_their_sites(client, registry_user, student,
                                                                          lib_evidence):
    client.force_login(registry_user)
    assert body(client.get(url("registry", "evidence", lib_evidence.pk))) == PNG_BYTES
    client.force_login(student.user)
    assert body(client.get(url("student", "evidence", lib_evidence.pk))) == PNG_BYTES


def test_finance_downloads_a_receipt_and_the_student_who_paid_too(client, fin_client, student, paid_with_receipt):
    payment = paid_with_receipt(student, name="M-PESA TL44LDQBWZ.pdf")
    assert_served_safely(fin_client.get(url("finance", "receipt", payment.pk)), content=PDF_BYTES,
                         content_type="application/pdf", filename="M-PESA TL44LDQBWZ.pdf")
    client.force_login(student.user)
    assert body(client.get(url("student", "receipt", payment.pk))) == PDF_BYTES


def test_finance_and_the_registry_download_an_import_file(fin_client, client, registry_user, finance_user):
    from core.services.balances import balances_import_submit
    bi = balances_import_submit(file=ContentFile(CSV_BYTES, name="fees 2026.csv"), acting_user=finance_user)
    assert_served_safely(fin_client.get(url("finance", "import", bi.pk)), content=CSV_BYTES,
                         content_type="text/csv", filename="fees 2026.csv")
    client.force_login(registry_user)
    assert client.get(url("registry", "import", bi.pk)).status_code == 200


def test_superusers_download_everything_from_admin(client, superuser, lib_evidence, student, paid_with_receipt):
    client.force_login(superuser)
    assert client.get(url("admin", "evidence", lib_evidence.pk)).status_code == 200
    assert client.get(url("admin", "receipt", paid_with_receipt(student).pk)).status_code == 200


# --- who does not ----------------------------------------------------------------------------------

@pytest.mark.parametrize("site", ["staff", "registry", "student", "finance", "admin"])
def test_anonymous_is_sent_to_the_login(client, site, lib_evidence):
    response = client.get(url(site, "evidence", lib_evidence.pk))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(f"{site}:login"))


def test_a_clerk_of_another_office_gets_a_404(client, make_reviewer, lib_evidence):
    client.force_login(make_reviewer("SPT"))
    assert client.get(url("staff", "evidence", lib_evidence.pk)).status_code == 404


def test_a_school_office_clerk_of_another_school_gets_a_404(client, offices, open_request, make_reviewer,
                                                            with_evidence):
    spa_student = factories.StudentFactory(school=factories.SchoolFactory(code="SPA"))
    item = with_evidence(open_request(spa_student).approvals.get(department__code="SCH"))
    client.force_login(make_reviewer("SCH", schools=[factories.SchoolFactory(code="SCE2")]))
    assert client.get(url("staff", "evidence", item.pk)).status_code == 404


def test_a_student_gets_a_404_for_another_students_evidence_and_receipt(client, lib_evidence, paid_with_receipt,
                                                                       student):
    neighbour = factories.StudentFactory(with_user=True)
    client.force_login(as_student(neighbour))
    assert client.get(url("student", "evidence", lib_evidence.pk)).status_code == 404
    assert client.get(url("student", "receipt", paid_with_receipt(student).pk)).status_code == 404


def test_a_library_clerk_cannot_download_a_finance_receipt(client, lib_reviewer, student, paid_with_receipt):
    payment = paid_with_receipt(student)
    client.force_login(lib_reviewer)
    assert client.get(url("staff", "receipt", payment.pk)).status_code == 404
    assert client.get(url("finance", "receipt", payment.pk)).status_code == 302      # not their site: login


def test_staff_and_students_cannot_download_import_files(client, lib_reviewer, student, finance_user):
    bi = factories.BalanceImportFactory(uploaded_by=finance_user)
    bi.file.save("fees.csv", ContentFile(CSV_BYTES))
    client.force_login(lib_reviewer)
    assert client.get(url("staff", "import", bi.pk)).status_code == 404
    client.force_login(student.user)
    assert client.get(url("student", "import", bi.pk)).status_code == 404


def test_out_of_scope_looks_like_nothing_at_all(client, make_reviewer, lib_evidence, clearance):
    """The refusal is the same 404 as an id that does not exist, an item without a file, a kind
    there is not."""
    client.force_login(make_reviewer("SPT"))
    refused = client.get(url("staff", "evidence", lib_evidence.pk))
    missing = client.get(url("staff", "evidence", 10**9))
    no_file = client.get(url("staff", "evidence", clearance.approvals.get(department__code="SPT").pk))
    other_kind = client.get(f"/staff/files/certificate/{lib_evidence.pk}/")
    assert {r.status_code for r in (refused, missing, no_file, other_kind)} == {404}

    def said(response):          # the page in the site's layout, its per-render CSRF token aside
        return re.sub(rb'value="[^"]{64}"', b"", response.content)
    assert said(refused) == said(missing)


def test_a_file_stored_before_the_checks_is_served_as_bytes_never_as_a_page(client, superuser, clearance,
                                                                           approval, lib_reviewer):
    """An HTML 'receipt' already in storage cannot run in the app's origin any more."""
    lib = approval(clearance, "LIB")
    page = b"<html><script>fetch('/admin/core/user/1/change/', {method: 'POST'})</script></html>"
    lib.evidence.save("receipt.html", ContentFile(page), save=False)
    lib.evidence_name = "receipt.html"
    ClearanceApproval.objects.filter(pk=lib.pk).update(evidence=lib.evidence.name, evidence_name="receipt.html")
    client.force_login(lib_reviewer)
    response = client.get(url("staff", "evidence", lib.pk))
    assert_served_safely(response, content=page, content_type="application/octet-stream", filename="receipt")


# --- nothing serves the storage ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/media/evidence/2026/01/letter.pdf", "/media/receipts/x.pdf",
                                  "/media/imports/2026/02/fees.xlsx"])
def test_no_route_serves_media(client, superuser, path):
    with pytest.raises(Resolver404):
        resolve(path)
    assert client.get(path).status_code == 404
    client.force_login(superuser)
    assert client.get(path).status_code == 404


def test_no_route_serves_media_even_with_debug(settings):
    import clearance_admin.urls as urls
    with override_settings(DEBUG=True):
        fresh = importlib.reload(urls)        # the URLconf as DEBUG=True would build it
        try:
            with pytest.raises(Resolver404):
                resolve("/media/evidence/2026/01/letter.pdf", urlconf=fresh)
        finally:
            importlib.reload(urls)


# --- every link goes through the site's view --------------------------------------------------------

def test_every_page_links_files_through_its_own_sites_view(client, lib_reviewer, registry_user, student,
                                                           superuser, fin_client, lib_evidence, paid_with_receipt,
                                                           finance_user):
    payment = paid_with_receipt(student)
    bi = factories.BalanceImportFactory(uploaded_by=finance_user)
    bi.file.save("fees.csv", ContentFile(CSV_BYTES))
    pages = {
        lib_reviewer: [(reverse("staff:core_clearanceapproval_change", args=[lib_evidence.pk]),
                        url("staff", "evidence", lib_evidence.pk))],
        registry_user: [(reverse("registry:core_clearancerequest_change", args=[lib_evidence.request_id]),
                         url("registry", "evidence", lib_evidence.pk))],
        student.user: [(reverse("student:index"), url("student", "evidence", lib_evidence.pk)),
                       (reverse("student:index"), url("student", "receipt", payment.pk))],
        finance_user: [(reverse("finance:core_payment_change", args=[payment.pk]), url("finance", "receipt", payment.pk)),
                       (reverse("finance:core_balanceimport_change", args=[bi.pk]), url("finance", "import", bi.pk))],
        superuser: [(reverse("admin:core_clearanceapproval_change", args=[lib_evidence.pk]),
                     url("admin", "evidence", lib_evidence.pk)),
                    (reverse("admin:core_payment_change", args=[payment.pk]), url("admin", "receipt", payment.pk)),
                    (reverse("admin:core_balanceimport_change", args=[bi.pk]), url("admin", "import", bi.pk))],
    }
    for user, links in pages.items():
        client.force_login(user)
        for page, link in links:
            html = client.get(page).content.decode()
            assert f'href="{link}"' in html, (user, page)
            assert "/media/" not in html, (user, page)


def test_the_error_report_is_a_sandboxed_attachment_too(fin_client, finance_user):
    bi = factories.BalanceImportFactory(uploaded_by=finance_user, error_count=1,
                                        errors=[{"row": 3, "column": "Balance", "reason": "not a number",
                                                 "value": "=HYPERLINK(\"x\")"}])
    response = fin_client.get(reverse("finance:core_balanceimport_download_error_report", args=[bi.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert (response["X-Content-Type-Options"], response["Content-Security-Policy"]) == (
        "nosniff", "sandbox; default-src 'none'")
