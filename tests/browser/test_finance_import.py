"""A finance officer imports the finance system's balances export in Chromium: upload, preview,
confirm, result."""
from __future__ import annotations

from pathlib import Path

from core.models import BalanceImport, FinanceRecord, Student
from tests import factories
from tests.core.services.test_balances import XLSX_BALANCES

from .conftest import login

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "balances_finance_export.xlsx"


def _students_of_the_sample():
    for reg in XLSX_BALANCES:
        if Student.objects.filter(registration_number=reg).exists():
            continue
        school_code, dept_code, *_ = reg.split("/")
        school = factories.SchoolFactory(code=school_code)
        dept = factories.AcademicDepartmentFactory(school=school, code=dept_code)
        factories.StudentFactory(registration_number=reg, school=school, academic_department=dept)


def test_finance_imports_the_balances_export(page):
    _students_of_the_sample()
    # the demo already has the sample's students; this one's balance differs from the file's (-1,200)
    FinanceRecord.objects.filter(student__registration_number="SCE/IT/0001/2021").update(tuition_balance=0)
    login(page, "finance", "finance@clearance.test")
    page.goto("/finance/core/balanceimport/")
    page.click("a:has-text('Import balances')")
    page.wait_for_load_state("networkidle")
    page.set_input_files("input[type=file][name=file]", str(SAMPLE))
    page.click("button[type=submit]:has-text('Upload and preview')")
    page.wait_for_load_state("networkidle")

    bi = BalanceImport.objects.get(original_name="balances_finance_export.xlsx")
    assert page.url.endswith(f"/finance/core/balanceimport/{bi.pk}/preview/")
    assert bi.status == BalanceImport.Status.PREVIEWED and bi.updated_count > 0
    assert page.inner_text("#count-updated") == str(bi.updated_count)
    assert page.inner_text("#count-not-found") == str(bi.not_found_count)
    assert page.inner_text("#count-errors") == str(bi.error_count)
    assert "SCE/IT/0001/2021" in page.inner_text("#changed-rows")

    if bi.error_count:
        page.check("#skip_errors")
    page.click("button[type=submit]:has-text('Confirm and apply')")
    page.wait_for_load_state("networkidle")

    assert page.url.endswith(f"/finance/core/balanceimport/{bi.pk}/change/")
    bi.refresh_from_db()
    assert bi.status == BalanceImport.Status.APPLIED
    assert f"{bi.updated_count} records updated" in page.inner_text("body")
    assert str(FinanceRecord.objects.get(student__registration_number="SBE/ACC/0004/2021").tuition_balance) == \
        "12500.00"
