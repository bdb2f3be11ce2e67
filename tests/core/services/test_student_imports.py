"""Graduand imports: the registry's list from the student records system, previewed, then applied
in one transaction (new students created, changed ones updated, nobody deleted)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from core import locks
from core.history import bulk_update_tracked
from core.models import Student, StudentImport
from core.services import student_imports
from core.services.student_imports import student_import_apply, student_import_cancel, student_import_preview
from tests import factories
from tests.conftest import LockHolder

pytestmark = pytest.mark.django_db

SI = StudentImport.Status
ANN, BOB, CY, DEE = "SCE/CS/0001/2022", "SCE/CS/0002/2022", "SCE/CS/0003/2022", "SED/ECD/0004/2022"
HEAD = "Reg No,Surname,Other Names,Programme,School,Graduation Year,Hostel,Email"


def csv(*lines, name="cohort2026.csv") -> ContentFile:
    return ContentFile("\n".join(["Student records system — graduands", HEAD, *lines]).encode(), name=name)


@pytest.fixture
def structure(db):
    cs = factories.ProgrammeFactory(code="BSC-CS", name="BSc Computer Science",
                                    academic_department=factories.AcademicDepartmentFactory(
                                        school=factories.SchoolFactory(code="SCE", name="School of Computing"),
                                        code="CS"))
    ecd = factories.ProgrammeFactory(code="BED-ECD", name="BEd Early Childhood",
                                     academic_department=factories.AcademicDepartmentFactory(
                                         school=factories.SchoolFactory(code="SED", name="School of Education"),
                                         code="ECD"))
    return {"cs": cs, "ecd": ecd}


@pytest.fixture
def existing(structure):
    """ANN and BOB are in the system already (BOB not in the files below: never deleted)."""
    cs = structure["cs"]
    common = dict(school=cs.academic_department.school, academic_department=cs.academic_department, programme=cs,
                  expected_graduation_year=2026, is_resident=False)
    return {ANN: factories.StudentFactory(registration_number=ANN, first_name="Ann", last_name="Achieng",
                                          email="ann@x.test", **common),
            BOB: factories.StudentFactory(registration_number=BOB, first_name="Bob", last_name="Baraka", **common)}


def preview(user, *lines, **kwargs):
    return student_import_preview(file=csv(*lines, **kwargs), acting_user=user)


def test_preview_sorts_new_changed_unchanged_and_apply_writes_them_never_deleting(registry_user, existing):
    si = preview(registry_user,
                 f"{ANN},Achieng,Ann,BSC-CS,SCE,2026,,ann@x.test",            # unchanged
                 f"{CY},Chebet,Cy,bsc computer science,School of Computing,2026,yes,cy@x.test",   # new, by names
                 f"{DEE},Duma,Dee,BED-ECD,sed,2027,no,")                          # new
    assert (si.status, si.new_count, si.changed_count, si.unchanged_count, si.error_count) == (SI.PREVIEWED, 2, 0, 1, 0)
    assert Student.objects.count() == 2                                         # preview writes no student
    student_import_apply(student_import=si, acting_user=registry_user)
    si.refresh_from_db()
    assert (si.status, si.new_count) == (SI.APPLIED, 2)
    cy = Student.objects.get(registration_number=CY)
    assert (cy.last_name, cy.first_name, cy.school.code, cy.programme.code, cy.academic_department.code,
            cy.expected_graduation_year, cy.is_resident, cy.email, cy.admission_year) == (
        "Chebet", "Cy", "SCE", "BSC-CS", "CS", 2026, True, "cy@x.test", 2022)
    record = cy.history.get(history_type="+")
    assert record.history_change_reason == f"Created by graduand import #{si.pk} (cohort2026.csv)"
    assert record.history_user == registry_user
    assert Student.objects.filter(registration_number=BOB).exists()             # not in the file: kept
    assert Student.objects.count() == 4


def test_a_student_moved_to_another_school_is_changed_with_old_and_new(registry_user, existing):
    si = preview(registry_user, f"{ANN},Achieng-Otieno,Ann,BED-ECD,SED,2027,,")
    assert (si.new_count, si.changed_count, si.unchanged_count) == (0, 1, 0)
    (_sid, reg, row, _values, diffs), = si.plan["changed"]
    assert (reg, row) == (ANN, 3)
    assert ["school", "SCE", "SED"] in diffs and ["programme", "BSC-CS", "BED-ECD"] in diffs
    assert ["surname", "Achieng", "Achieng-Otieno"] in diffs and ["expected graduation", "2026", "2027"] in diffs
    assert not any(d[0] == "email" for d in diffs)                             # blank email: kept as it is
    student_import_apply(student_import=si, acting_user=registry_user)
    ann = Student.objects.get(registration_number=ANN)
    assert (ann.school.code, ann.academic_department.code, ann.programme.code, ann.last_name, ann.email) == (
        "SED", "ECD", "BED-ECD", "Achieng-Otieno", "ann@x.test")
    reasons = list(ann.history.order_by("history_date").values_list("history_change_reason", flat=True))
    assert reasons[-2:] == [f"Updated by graduand import #{si.pk} (cohort2026.csv)",      # then her login made
                            f"invited by graduand import #{si.pk} (cohort2026.csv)"]


def test_duplicated_registration_numbers_are_errors_in_both_rows_and_nothing_applies(registry_user, existing):
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,", f"{CY.lower()},Chebet,Cy,BSC-CS,SCE,2026,,")
    assert (si.new_count, si.error_count) == (0, 2)
    assert {e["row"] for e in si.errors} == {3, 4}
    assert all("also in row" in e["reason"] for e in si.errors)
    with pytest.raises(ValidationError) as exc:
        student_import_apply(student_import=si, acting_user=registry_user)
    assert exc.value.code == "has_errors"
    assert not Student.objects.filter(registration_number=CY).exists()


def test_unknown_programme_and_school_are_listed_and_malformed_email_refused(registry_user, existing):
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-ASTRO,SCE,2026,,", f"{DEE},Duma,Dee,BED-ECD,SXX,2026,,",
                 f"{ANN},Achieng,Ann,BSC-CS,SCE,2026,,not-an-email", f"{BOB},Baraka,Bob,BSC-CS,SCE,twenty,,")
    assert si.plan["unknown"] == {"programmes": [["BSC-ASTRO", [3]]], "schools": [["SXX", [4]]]}
    reasons = {e["row"]: e["reason"] for e in si.errors}
    assert "no programme has the code or name “BSC-ASTRO”" in reasons[3]
    assert "no school has the code or name “SXX”" in reasons[4]
    assert "“not-an-email” is not an email address" in reasons[5]
    assert "“twenty” is not a year" in reasons[6]
    assert (si.error_count, si.new_count, si.changed_count) == (4, 0, 0)


def test_a_programme_of_another_school_is_an_error(registry_user, existing):
    si = preview(registry_user, f"{CY},Chebet,Cy,BED-ECD,SCE,2026,,")
    assert si.errors[0]["reason"] == "BED-ECD is a programme of SED, not of SCE"


def test_skipping_errors_applies_only_the_good_rows(registry_user, existing):
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,", f"{DEE},Duma,Dee,NOPE,SED,2026,,")
    student_import_apply(student_import=si, acting_user=registry_user, skip_errors=True)
    assert set(Student.objects.values_list("registration_number", flat=True)) == {ANN, BOB, CY}


def test_a_student_changed_since_the_preview_refuses_the_apply(registry_user, existing):
    si = preview(registry_user, f"{ANN},Achieng,Ann,BED-ECD,SED,2026,,", f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
    ann = existing[ANN]
    ann.phone = "0700000001"
    ann.save()
    with pytest.raises(ValidationError) as exc:
        student_import_apply(student_import=si, acting_user=registry_user)
    assert exc.value.code == "stale" and "changed since the preview" in exc.value.messages[0]
    si.refresh_from_db()
    assert si.status == SI.FAILED
    assert not Student.objects.filter(registration_number=CY).exists()
    assert Student.objects.get(registration_number=ANN).school.code == "SCE"


def test_a_new_student_created_meanwhile_refuses_the_apply(registry_user, existing, structure):
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
    cs = structure["cs"]
    factories.StudentFactory(registration_number=CY, school=cs.academic_department.school,
                             academic_department=cs.academic_department, programme=cs)
    with pytest.raises(ValidationError) as exc:
        student_import_apply(student_import=si, acting_user=registry_user)
    assert exc.value.code == "stale"


def test_apply_is_one_transaction(registry_user, existing, monkeypatch):
    si = preview(registry_user, f"{ANN},Achieng,Ann,BED-ECD,SED,2026,,", f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")

    def broken(*args, **kwargs):
        bulk_update_tracked(*args, **kwargs)
        raise RuntimeError("disk full")
    monkeypatch.setattr(student_imports, "bulk_update_tracked", broken)
    with pytest.raises(RuntimeError):
        student_import_apply(student_import=si, acting_user=registry_user)
    assert not Student.objects.filter(registration_number=CY).exists()          # the create rolled back too
    assert Student.objects.get(registration_number=ANN).school.code == "SCE"
    si.refresh_from_db()
    assert si.status == SI.FAILED and "disk full" in si.failure_reason


def test_bulk_writes_do_not_query_per_row(registry_user, structure):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def rows(numbers, year):
        return [f"SCE/CS/{i:04d}/2022,S{i},O{i},BSC-CS,SCE,{year},," for i in numbers]
    preview_and_apply = lambda lines: student_import_apply(student_import=preview(registry_user, *lines),
                                                           acting_user=registry_user)
    # past bulk_update_tracked's CASE limit both times, so both take the same path
    preview_and_apply(rows(range(1, 41), 2026) + rows(range(500, 620), 2026))     # warm caches; students to change
    counts = []
    for lines in (rows(range(1, 41), 2027) + rows(range(50, 90), 2026),           # 40 changed, 40 new
                  rows(range(500, 620), 2027) + rows(range(100, 220), 2026)):     # 120 changed, 120 new
        with CaptureQueriesContext(connection) as ctx:
            preview_and_apply(lines)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    assert Student.objects.filter(expected_graduation_year=2027).count() == 160


def test_only_the_registry_imports(make_user, finance_user, lib_reviewer, registry_user, existing):
    from core.permissions import REGISTRY
    for user in (finance_user, lib_reviewer, make_user()):
        with pytest.raises(ValidationError) as exc:
            preview(user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
        assert exc.value.code == "not_registry"
    assert not StudentImport.objects.exists()
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
    registry_user.groups.clear()
    registry_user = type(registry_user).objects.get(pk=registry_user.pk)
    with pytest.raises(ValidationError):
        student_import_apply(student_import=si, acting_user=registry_user)
    with pytest.raises(ValidationError):
        student_import_cancel(student_import=si, acting_user=finance_user)
    assert REGISTRY and not Student.objects.filter(registration_number=CY).exists()


def test_cancel_applies_nothing_and_an_applied_import_is_not_applied_twice(registry_user, existing):
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
    student_import_cancel(student_import=si, acting_user=registry_user)
    with pytest.raises(ValidationError):
        student_import_apply(student_import=si, acting_user=registry_user)
    assert not Student.objects.filter(registration_number=CY).exists()
    again = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
    student_import_apply(student_import=again, acting_user=registry_user)
    with pytest.raises(ValidationError) as exc:
        student_import_apply(student_import=again, acting_user=registry_user)
    assert exc.value.code == "applied"


@pytest.mark.django_db(transaction=True)
def test_one_apply_at_a_time(registry_user, existing):
    si = preview(registry_user, f"{CY},Chebet,Cy,BSC-CS,SCE,2026,,")
    assert locks.KINDS[student_imports.APPLY_LOCK] not in {v for k, v in locks.KINDS.items()
                                                           if k != student_imports.APPLY_LOCK}
    with LockHolder((student_imports.APPLY_LOCK, 0)):
        with pytest.raises(ValidationError) as exc:
            student_import_apply(student_import=si, acting_user=registry_user, wait=0.2)
    assert exc.value.code == "another_applying"
    si.refresh_from_db()
    assert si.status == SI.PREVIEWED
    student_import_apply(student_import=si, acting_user=registry_user)
    assert Student.objects.filter(registration_number=CY).exists()


def test_applying_invites_the_students_of_the_file_with_an_email_and_no_login(
        registry_user, existing, django_capture_on_commit_callbacks):
    from django.core import mail
    invited_before = factories.StudentFactory(registration_number="SCE/CS/0009/2022", email="old@x.test",
                                              with_user=True)
    si = preview(registry_user,
                 f"{ANN},Achieng,Ann,BSC-CS,SCE,2026,,ann@x.test",            # existing, no login yet: invited
                 f"{CY},Chebet,Cy,BSC-CS,SCE,2026,yes,cy@x.test",              # new with an email: invited
                 f"{DEE},Duma,Dee,BED-ECD,sed,2027,no,",                       # new without one: not
                 "SCE/CS/0009/2022,Old,Timer,BSC-CS,SCE,2026,,old@x.test")     # has a login: not again
    with django_capture_on_commit_callbacks(execute=True):
        applied = student_import_apply(student_import=si, acting_user=registry_user)
    assert applied.invited_count == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@x.test", "cy@x.test"]
    cy = Student.objects.get(registration_number=CY)
    assert not cy.user.has_usable_password()
    assert cy.user.history.get().history_change_reason == f"invited by graduand import #{si.pk} (cohort2026.csv)"
    invited_before.refresh_from_db()
    assert StudentImport.objects.get(pk=si.pk).invited_count == 2
    # the same file again: nobody is invited twice
    mail.outbox.clear()
    again = preview(registry_user, f"{ANN},Achieng,Ann,BSC-CS,SCE,2026,,ann@x.test")
    with django_capture_on_commit_callbacks(execute=True):
        assert student_import_apply(student_import=again, acting_user=registry_user).invited_count == 0
    assert not mail.outbox


def test_invitations_of_a_large_import_go_in_a_few_tasks(registry_user, structure, django_capture_on_commit_callbacks,
                                                         monkeypatch):
    import core.services.accounts as accounts
    monkeypatch.setattr(accounts, "LINKS_PER_TASK", 10)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kw: queued.append((func, args)))
    lines = [f"SCE/CS/{i:04d}/2022,S{i},O{i},BSC-CS,SCE,2026,,s{i}@x.test" for i in range(1, 26)]
    with django_capture_on_commit_callbacks(execute=True):
        applied = student_import_apply(student_import=preview(registry_user, *lines), acting_user=registry_user)
    assert applied.invited_count == 25
    links = [args for func, args in queued if func == accounts.SEND_MANY_TASK]
    assert [len(ids) for ids, _kind in links] == [10, 10, 5]
