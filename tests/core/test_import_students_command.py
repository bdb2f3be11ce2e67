"""`python manage.py import_students FILE [--dry-run] [--user EMAIL] [--skip-errors]`: exit status
0 applied / 1 errors (nothing applied) / 2 unreadable or refused, as import_balances and import_holds."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from core.models import Student, StudentImport
from tests import factories

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
RECORDS = str(SAMPLES / "graduands_records_system.csv")


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_students", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def structure(db):
    programmes = {}
    for school, dept, name in (("SCE", "IT", "BSc Information Technology"), ("SHS", "NUR", "BSc Nursing"),
                               ("SBE", "ACC", "BCom Accounting")):
        programmes[school] = factories.ProgrammeFactory(
            code=f"{school}-{dept}-BSC", name=name,
            academic_department=factories.AcademicDepartmentFactory(school=factories.SchoolFactory(code=school),
                                                                    code=dept))
    nur = programmes["SHS"]
    brian = factories.StudentFactory(registration_number="SHS/NUR/0002/2022", last_name="Omondi",
                                     first_name="Brian Otieno", school=nur.academic_department.school,
                                     academic_department=nur.academic_department, programme=nur,
                                     expected_graduation_year=2026, is_resident=False,
                                     email="brian.omondi@students.example.ac.ke", phone="0700000000")
    return {"programmes": programmes, "brian": brian}


def test_errors_apply_nothing_then_skip_errors_applies_the_rest(structure, registry_user):
    code, out, err = run(RECORDS, "--user", registry_user.email)
    assert code == 1
    assert "5 rows; 1 new, 1 changed, 0 unchanged, 3 error(s), 3 skipped" in out
    assert "changed: row 6, SHS/NUR/0002/2022: phone 0700000000 → 0722123456" in out
    assert "unknown programme: “BCom Marketing” (rows 9)" in out
    assert "error: row 8, Email: “faith.kiptoo@students” is not an email address" in out
    assert "error: row 10, Expected Graduation: 20026 is not a graduation year" in out
    assert "Not applied" in err and Student.objects.count() == 1
    code, out, err = run(RECORDS, "--user", registry_user.email, "--skip-errors")
    assert code == 0, err
    assert "1 created, 1 updated" in out
    grace = Student.objects.get(registration_number="SCE/IT/0001/2021")
    assert (grace.last_name, grace.first_name, grace.programme.code, grace.is_resident, grace.phone) == (
        "Wanjiru", "Grace Njeri", "SCE-IT-BSC", True, "0712345678")
    assert StudentImport.objects.filter(status=StudentImport.Status.APPLIED).get().uploaded_by == registry_user


def test_dry_run_is_0_when_clean_and_changes_nothing(structure, tmp_path):
    clean = tmp_path / "clean.csv"
    clean.write_text("Reg No,Name,Programme,School,Cohort\nSCE/IT/0009/2022,\"Otieno, Mary\",SCE-IT-BSC,SCE,2026\n")
    code, out, _ = run(str(clean), "--dry-run")
    assert code == 0 and "1 new" in out
    assert not Student.objects.filter(registration_number="SCE/IT/0009/2022").exists()
    code, out, _ = run(str(clean))                          # the system, without --user
    assert code == 0
    record = Student.objects.get(registration_number="SCE/IT/0009/2022").history.get()
    assert record.history_user is None and record.history_change_reason.startswith("system: Created by graduand")


def test_unreadable_or_refused_is_2(structure, tmp_path, finance_user):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02")
    assert run(str(junk))[0] == 2
    assert run(str(tmp_path / "missing.csv"))[0] == 2
    assert run(RECORDS, "--user", "nobody@clearance.test")[0] == 2
    code, _, err = run(RECORDS, "--user", finance_user.email)
    assert code == 2 and "not the registry" in err
    assert not StudentImport.objects.exists() and Student.objects.count() == 1
