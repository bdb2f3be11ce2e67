"""`python manage.py import_holds FILE --department CODE [--full-list] [--dry-run] [--user EMAIL]`:
exit status 0 applied / 1 errors (nothing applied) / 2 unreadable or refused, as import_balances."""
from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from core.models import Hold, HoldImport
from tests import factories

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
LIBRARY = str(SAMPLES / "holds_library_overdue.csv")
HOSTELS = str(SAMPLES / "holds_hostel_damages.xlsx")


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_holds", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def students(offices):
    return [factories.student_with_reg(reg) for reg in ("SCE/IT/0001/2021", "SHS/NUR/0002/2022", "SBE/ACC/0004/2021")]


def test_the_library_list_with_an_error_applies_nothing_then_skips_it(students, lib_reviewer):
    code, out, err = run(LIBRARY, "--department", "LIB", "--user", lib_reviewer.email)
    assert code == 1
    assert "5 rows; 3 to place, 0 to update, 0 to release, 0 unchanged, 1 not found, 1 error(s), 2 skipped" in out
    assert "not found: row 7, NOT/A/0000/1999" in out
    assert "error: row 8, Fine (KES): “abc” is not an amount" in out
    assert "Not applied" in err and not Hold.objects.exists()
    code, out, err = run(LIBRARY, "--department", "lib", "--user", lib_reviewer.email, "--skip-errors")
    assert code == 0, err
    assert "Applied hold import #" in out and "3 placed" in out
    assert sorted(Hold.objects.values_list("department__code", "student__registration_number", "reason", "amount")) == [
        ("LIB", "SCE/IT/0001/2021", "Discrete Mathematics", None),
        ("LIB", "SCE/IT/0001/2021", "Introduction to Algorithms", Decimal("1500.00")),
        ("LIB", "SHS/NUR/0002/2022", "Anatomy and Physiology", Decimal("2500.00"))]
    assert HoldImport.objects.filter(status=HoldImport.Status.APPLIED).get().uploaded_by == lib_reviewer


def test_the_hostels_list_full_list_and_dry_run(students, offices, make_reviewer):
    hos = make_reviewer("HOS", email="hos@clearance.test")
    factories.HoldFactory(department=offices["HOS"], student=students[1], reason="Key not returned", source=Hold.Source.HOLD_IMPORT)
    code, out, _ = run(HOSTELS, "--department", "HOS", "--full-list", "--dry-run", "--user", hos.email)
    assert code == 0
    assert "(full list): 2 rows; 2 to place, 0 to update, 1 to release" in out
    assert Hold.objects.filter(status=Hold.Status.ACTIVE).count() == 1
    code, out, _ = run(HOSTELS, "--department", "HOS", "--full-list")        # the system, without --user
    assert code == 0
    assert set(Hold.objects.filter(status=Hold.Status.ACTIVE).values_list("reason", flat=True)) == {
        "Broken window", "Torn mattress"}
    released = Hold.objects.get(reason="Key not returned")
    assert released.status == Hold.Status.RELEASED
    assert released.history.latest().history_change_reason.startswith("system: Released by hold import #")


@pytest.mark.parametrize("reviews, into", [("LIB", "HOS"), ("HOS", "LIB")])
def test_a_user_of_another_office_is_refused(students, make_reviewer, reviews, into):
    clerk = make_reviewer(reviews, email="clerk@clearance.test")
    code, _, err = run(LIBRARY, "--department", into, "--user", clerk.email)
    assert code == 2
    assert f"clerk@clearance.test does not review {into}" in err
    assert not HoldImport.objects.exists() and not Hold.objects.exists()


def test_unreadable_or_unknown(students, lib_reviewer, tmp_path):
    assert run(LIBRARY, "--department", "NOPE")[0] == 2
    assert run(str(tmp_path / "missing.csv"), "--department", "LIB")[0] == 2
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"Reg No,Balance\nSCE/IT/0001/2021,100\n")
    code, _, err = run(str(junk), "--department", "LIB")
    assert code == 2 and "No header row found" in err
    assert not HoldImport.objects.exists()
