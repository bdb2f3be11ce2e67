"""`python manage.py import_balances FILE [--dry-run] [--user EMAIL] [--skip-errors]`: the services'
results printed, and exit status 0 applied / 1 errors (nothing applied) / 2 unreadable."""
from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from core.models import BalanceImport, FinanceRecord, Hold
from tests import factories

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_balances", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def students(offices):
    made = []
    for reg in ("SCE/IT/0001/2021", "SHS/NUR/0002/2022", "SBE/ACC/0004/2021"):
        school = factories.SchoolFactory(code=reg.split("/")[0])
        dept = factories.AcademicDepartmentFactory(school=school, code=reg.split("/")[1])
        s = factories.StudentFactory(registration_number=reg, school=school, academic_department=dept)
        factories.FinanceRecordFactory(student=s, tuition_balance=Decimal("1"))
        made.append(s)
    return made


def test_applies_and_exits_0(students, finance_user):
    code, out, err = run(str(SAMPLES / "balances_finance_export.xlsx"), "--user", finance_user.email)
    assert code == 0, err
    assert "61 rows; 3 to update, 0 unchanged, 58 not found, 0 error(s)" in out
    assert "not found: row 67, NOT/A/0000/1999" in out
    assert "Applied import #" in out
    assert dict(FinanceRecord.objects.values_list("student__registration_number", "tuition_balance")) == {
        "SCE/IT/0001/2021": Decimal("-1200"), "SHS/NUR/0002/2022": Decimal("0"), "SBE/ACC/0004/2021": Decimal("12500")}
    bi = BalanceImport.objects.get()
    assert (bi.status, bi.uploaded_by) == (BalanceImport.Status.APPLIED, finance_user)
    assert Hold.objects.get(student=students[2]).amount == Decimal("12500")


def test_dry_run_changes_nothing(students):
    code, out, _ = run(str(SAMPLES / "balances_semicolon.csv"), "--dry-run")
    assert code == 0
    assert "3 to update" in out
    assert set(FinanceRecord.objects.values_list("tuition_balance", flat=True)) == {Decimal("1")}
    assert BalanceImport.objects.get().status == BalanceImport.Status.PREVIEWED


def test_errors_exit_1_and_apply_nothing(students, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Reg No,Balance\nSCE/IT/0001/2021,500\nSHS/NUR/0002/2022,abc\n")
    code, out, err = run(str(path))
    assert code == 1
    assert "error: row 3, Balance: “abc” is not an amount" in out
    assert "Not applied: the file has 1 error(s)" in err
    assert set(FinanceRecord.objects.values_list("tuition_balance", flat=True)) == {Decimal("1")}
    code, out, _ = run(str(path), "--skip-errors")
    assert code == 0
    assert FinanceRecord.objects.get(student=students[0]).tuition_balance == Decimal("500")


def test_unreadable_exit_2(db, tmp_path):
    path = tmp_path / "photo.xlsx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    code, _, err = run(str(path))
    assert code == 2 and "PNG image, not a spreadsheet" in err
    code, _, err = run(str(tmp_path / "missing.xlsx"))
    assert code == 2 and "no such file" in err
    assert not BalanceImport.objects.exists()


def test_a_user_who_is_not_a_finance_officer_imports_nothing(students, lib_reviewer):
    from django.core.management.base import CommandError
    with pytest.raises(CommandError, match="lib@clearance.test is not a finance officer"):
        run(str(SAMPLES / "balances_semicolon.csv"), "--user", lib_reviewer.email)
    assert not BalanceImport.objects.exists()
    assert set(FinanceRecord.objects.values_list("tuition_balance", flat=True)) == {Decimal("1")}


def test_without_user_the_system_imports_and_history_says_so(students):
    code, _, err = run(str(SAMPLES / "balances_semicolon.csv"))
    assert code == 0, err
    bi = BalanceImport.objects.get()
    applied = bi.history.first()
    assert (applied.history_user, applied.history_change_reason) == (None, "system: Balance import applied")
    record = FinanceRecord.objects.get(student=students[0]).history.first()
    assert (record.history_user, record.history_change_reason) == (None, f"system: Balance import #{bi.pk}")


def test_reads_what_the_upload_form_reads_and_prints_the_warnings(students, tmp_path):
    path = tmp_path / "balances.txt"
    path.write_bytes("Reg No\tBalance\rSCE/IT/0001/2021\t'30,250.00 DR\rSHS/NUR/0002/2022\t\rTotal\t30250\r"
                     .replace("'", "").encode("utf-16"))
    code, out, err = run(str(path), "--dry-run")
    assert code == 0, err
    assert "2 rows; 2 to update" in out
    assert "Warning: Skipped: 1 row that is not data" in out
    assert "  warning: row 3, Balance: no amount: read as KES 0.00" in out


def test_a_refused_file_exits_2_with_the_reason(students, tmp_path):
    path = tmp_path / "balances.csv"
    path.write_bytes(b"Reg No,Fee Balance,Amount Due\nSCE/IT/0001/2021,1,2\n")
    code, out, err = run(str(path))
    assert code == 2 and "Two columns could be the balance" in err
    assert not BalanceImport.objects.exists()
