"""The Reports pages over HTTP: the registry's (every report), finance's (financial summary) and
each office's (pending in its own offices); the same rows as the selectors, downloads logged and
served as attachments, junk a form error, other roles refused."""
from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from core import permissions
from core.models import ExportLog
from core.selectors.reports import REPORTS
from tests.reports_world import world  # noqa: F401  (a fixture)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


URL = "/registry/reports/"


@pytest.fixture
def registry_client(client, registry_user):
    client.force_login(registry_user)
    return client


def test_the_registry_page_offers_every_report(world, registry_client):
    page = registry_client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    for report in REPORTS.values():
        assert f'value="{report.name}"' in html
    assert 'href="/registry/reports/"' in html            # the sidebar link


def test_a_report_on_screen_has_the_selectors_rows(world, registry_client):
    page = registry_client.get(URL, {"report": "completion_rate"})
    assert page.status_code == 200
    assert page.context["rows"] == list(REPORTS["completion_rate"].rows())
    assert page.context["header"] == REPORTS["completion_rate"].header()
    assert "Completion rate — no filters (everything)" in page.content.decode()


def test_pages_of_fifty_rows(world, registry_client):
    first = registry_client.get(URL, {"report": "audit_trail"})
    every = list(REPORTS["audit_trail"].rows())
    assert len(every) > 50
    assert first.context["rows"] == every[:50] and first.context["next_url"]
    second = registry_client.get(URL, {"report": "audit_trail", "page": "2"})
    assert second.context["rows"] == every[50:100] and second.context["previous_url"]


@pytest.mark.parametrize("query, field", [
    ({"report": "nope"}, "report"),
    ({"report": "graduation_list", "cycle": "abc"}, "cycle"),
    ({"report": "graduation_list", "cohort": "1999x"}, "cohort"),
    ({"report": "graduation_list", "school": "<script>"}, "school"),
    ({"report": "audit_trail", "since": "2026-13-45"}, "since"),
    ({"report": "audit_trail", "since": "2026-03-02", "until": "2026-03-01"}, "until"),
    ({"report": "audit_trail", "school": "SCE"}, "school"),              # not a filter of this report
    ({"report": "gowns", "page": "0"}, "page"),
    ({"report": "gowns", "page": "²"}, "page"),
    ({"report": "gowns", "download": "pdf"}, "download"),
])
def test_junk_is_a_form_error_never_a_500(world, registry_client, query, field):
    page = registry_client.get(URL, query)
    assert page.status_code == 200
    assert field in page.context["form"].errors
    assert page.context["rows"] is None
    assert not ExportLog.objects.exists()


def test_xlsx_download_is_an_attachment_with_the_rows_and_is_logged(world, registry_client, registry_user):
    response = registry_client.get(URL, {"report": "graduation_list", "cohort": "2026", "download": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].startswith('attachment; filename="graduation_list-')
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    ws = openpyxl.load_workbook(io.BytesIO(body(response))).active
    assert "cohort 2026" in ws["A1"].value
    assert [c.value for c in ws[3]][:2] == ["SCE/CS/0001/2022", "Ann Achieng"]
    log = ExportLog.objects.get()
    assert (log.user, log.report, log.format, log.rows, log.filters) == (
        registry_user, "graduation_list", "xlsx", 1, {"cohort": "2026"})
    assert log.history.get().history_user == registry_user


def test_csv_download_is_an_attachment_and_is_logged(world, registry_client, registry_user):
    response = registry_client.get(URL, {"report": "completed_but_now_held", "download": "csv"})
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    text = body(response).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][8] == "'=HYPERLINK(\"x\")"                     # neutralised
    log = ExportLog.objects.get()
    assert (log.user, log.format, log.rows) == (registry_user, "csv", 1)


def test_finance_sees_the_financial_summary_only(world, client, finance_user):
    client.force_login(finance_user)
    page = client.get("/finance/reports/", {"report": "financial_summary"})
    assert page.status_code == 200
    assert page.context["rows"] == list(REPORTS["financial_summary"].rows())
    refused = client.get("/finance/reports/", {"report": "graduation_list"})
    assert "report" in refused.context["form"].errors and refused.context["rows"] is None
    refused = client.get("/finance/reports/", {"report": "graduation_list", "download": "csv"})
    assert "Content-Disposition" not in refused and not ExportLog.objects.exists()


def test_an_office_sees_pending_items_of_its_own_offices_only(world, client, make_reviewer):
    reviewer = make_reviewer("LIB", is_staff=True)
    reviewer.groups.add(permissions_group(permissions.STAFF))
    client.force_login(reviewer)
    page = client.get("/staff/reports/", {"report": "pending_by_department"})
    assert page.status_code == 200
    assert {r[0] for r in page.context["rows"]} == {"LIB"} and len(page.context["rows"]) == 2
    # another office by hand: not among the choices
    other = client.get("/staff/reports/", {"report": "pending_by_department", "department": "SPT"})
    assert "department" in other.context["form"].errors
    download = client.get("/staff/reports/", {"report": "pending_by_department", "download": "csv"})
    rows = list(csv.reader(io.StringIO(body(download).decode("utf-8-sig"))))
    assert {r[0] for r in rows[1:]} == {"LIB"}
    for name in ("graduation_list", "audit_trail"):
        assert "report" in client.get("/staff/reports/", {"report": name}).context["form"].errors


def permissions_group(role):
    from django.contrib.auth.models import Group
    return Group.objects.get(name=role)


@pytest.mark.parametrize("url", [URL, URL + "?report=audit_trail&download=csv",
                                 URL + "?report=graduation_list&download=xlsx"])
def test_other_roles_are_refused_the_registry_reports(world, client, finance_user, student, url):
    for user in (finance_user, student.user):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 302 and "/registry/login/" in response["Location"]
    client.logout()
    assert "/registry/login/" in client.get(url)["Location"]
    assert not ExportLog.objects.exists()


def test_the_registry_is_refused_the_staff_and_finance_pages(world, registry_client):
    for url in ("/staff/reports/?report=pending_by_department&download=csv",
                "/finance/reports/?report=financial_summary&download=xlsx"):
        response = registry_client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert not ExportLog.objects.exists()
