"""The registry's day in a browser: filter a report, download it as xlsx, issue a certificate and
open its PDF."""
from __future__ import annotations

import io

import openpyxl
from pypdf import PdfReader

from core.models import Certificate, ClearanceRequest, School
from core.selectors.reports import REPORTS

from .conftest import login


def test_registry_filters_a_report_downloads_it_issues_a_certificate_and_opens_its_pdf(page, tmp_path):
    school = School.objects.filter(students__clearance_requests__status="completed").distinct().first()
    assert school is not None, "the demo world has a completed clearance"
    report = REPORTS["graduation_list"]
    expected = list(report.rows(report.parse({"school": school.code})))
    assert expected

    login(page, "registry", "registry@clearance.test")
    page.goto("/registry/reports/")
    page.select_option("select[name=report]", "graduation_list")
    page.select_option("select[name=school]", school.code)
    page.click("button[type=submit]:has-text('Show')")
    page.wait_for_load_state("networkidle")
    assert page.locator("table tbody tr").count() == min(len(expected), 50)
    with page.expect_download() as download:
        page.click("a:has-text('Download xlsx')")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    ws = openpyxl.load_workbook(saved).active
    values = [row for row in ws.iter_rows(values_only=True) if any(v is not None for v in row)]
    assert "Graduation list" in str(values[0][0]) and school.code in str(values[0][0])   # the title row
    assert len(values) == 2 + len(expected)                                            # title, header, rows

    request = (ClearanceRequest.objects.filter(status="completed", certificate__isnull=True)
               .select_related("student").order_by("pk").first())
    page.goto(f"/registry/core/clearancerequest/{request.pk}/change/")
    page.click("a:has-text('Issue certificate')")
    page.wait_for_load_state("networkidle")
    page.click("button[type=submit]:has-text('Issue certificate')")
    page.wait_for_load_state("networkidle")
    certificate = Certificate.objects.get(request=request)
    assert certificate.code in page.inner_text("body")
    with page.expect_download() as pdf:
        page.click("a:has-text('Download PDF')")
    data = io.BytesIO(open(pdf.value.path(), "rb").read())
    text = PdfReader(data).pages[0].extract_text()
    assert certificate.code in text and request.student.registration_number in text
