"""Graduand imports: the registry's list of a cohort's students from the student records system,
read from a spreadsheet, previewed, then applied (core/services/imports.py's upload → preview →
confirm).

Preview reads the file (core/imports/students.py), resolves each row's programme and school (a
code or a name, case and spacing aside) and compares the rows with the students of those
registration numbers, keeping in `StudentImport.plan` what it found: students to create, students
to change (each field old → new: a student moved to another school is changed), unchanged, the
programmes and schools the database does not know, rows skipped, and a fingerprint of the named
students as it saw them. Confirm applies that plan in one transaction, one graduand import at a
time, and refuses it when any of those students changed since the preview (or a new one was
created meanwhile).

An import creates and updates students; it never deletes one (a student missing from the file is
left as they are). Optional columns the file does not have, or leaves blank, keep what a student
already has (a new student: not resident, no email, no phone). The student's academic department is
their programme's.
"""
from __future__ import annotations

import hashlib
import re

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from .. import permissions
from ..bulk_load import any_of, insert_history_select, insert_new, quote
from ..history import as_system, bulk_update_tracked, save_tracked
from ..imports.balances import RowError
from ..imports.students import SKIPPED_WHY, ParsedStudents, StudentRow, parse_students
from ..models import Programme, School, Student, StudentImport, admission_year_from
from ._common import chunked
from .imports import earlier_application, import_cancel, import_confirm, new_import, read_upload, stored_bytes

SI = StudentImport.Status
WHAT = "Graduand import"
APPLY_LOCK = "student-import-apply"     # core/locks.py: one graduand import applies at a time
CONFIRM_WAIT = 5.0

# what is compared and written, in this order (attnames); None in a row's values: "as the student has it"
FIELDS = ("last_name", "first_name", "school_id", "academic_department_id", "programme_id",
          "expected_graduation_year", "is_resident", "email", "phone")
LABELS = {"last_name": "surname", "first_name": "other names", "school_id": "school",
          "academic_department_id": "department", "programme_id": "programme",
          "expected_graduation_year": "expected graduation", "is_resident": "hostel resident", "email": "email",
          "phone": "phone"}
OPTIONAL = ("is_resident", "email", "phone")
NEW_DEFAULTS = {"is_resident": False, "email": "", "phone": ""}

# positions in the plan's lists:
# new:       [reg, row, {field: value}]
# changed:   [student id, reg, row, {field: new value}, [[label, old shown, new shown], …]]
# unchanged: [student id, reg, row]
# unknown:   {"programmes": [[as written, [rows]]], "schools": [...]}; skipped: [[row, why]]

_SPACES = re.compile(r"\s+")


def import_label(si: StudentImport) -> str:
    """How history names the import: "graduand import #3 (cohort2026.xlsx)"."""
    return f"graduand import #{si.pk}" + (f" ({si.original_name})" if si.original_name else "")


def _check_may_import(acting_user, system: bool) -> None:
    if system and acting_user is None:
        return                                  # a command run without --user
    if acting_user is None:
        raise ValidationError("A graduand import needs the person who makes it.", code="no_user")
    if not permissions.may_import_students(acting_user):
        raise ValidationError("Only the registry imports graduands from the student records system.",
                              code="not_registry")


def _key(text: str) -> str:
    return _SPACES.sub(" ", str(text)).strip().casefold()


class _Structure:
    """The schools and programmes, each found by its code or its name (two queries: small tables)."""

    def __init__(self):
        self.schools = {s["pk"]: s for s in School.objects.values("pk", "code", "name")}
        self.programmes = {p["pk"]: p for p in Programme.objects.values(
            "pk", "code", "name", "academic_department_id", "academic_department__school_id")}
        self.school_by = self._index(self.schools.values())
        self.programme_by = self._index(self.programmes.values())

    @staticmethod
    def _index(items) -> dict[str, list[int]]:
        by: dict[str, list[int]] = {}
        for item in items:
            by.setdefault(_key(item["code"]), []).append(item["pk"])
            name = _key(item["name"])
            if item["pk"] not in by.get(name, []):
                by.setdefault(name, []).append(item["pk"])
        return by

    def find(self, kind: str, text: str) -> tuple[int | None, str]:
        """(id, "") or (None, "unknown" | "ambiguous")."""
        found = (self.school_by if kind == "school" else self.programme_by).get(_key(text), [])
        if len(found) == 1:
            return found[0], ""
        return None, "ambiguous" if found else "unknown"

    def shown(self, attname: str, value) -> str:
        if value is None or value == "":
            return "—"
        if attname == "school_id":
            return self.schools[value]["code"] if value in self.schools else f"#{value}"
        if attname == "programme_id":
            return self.programmes[value]["code"] if value in self.programmes else f"#{value}"
        if attname == "is_resident":
            return "yes" if value else "no"
        return str(value)


def _students(numbers) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for part in chunked(sorted(set(numbers)), 2000):
        for s in Student.objects.filter(registration_number__in=part).values("pk", "registration_number", *FIELDS):
            out[s["registration_number"]] = s
    return out


def _fingerprint(students) -> str:
    """The named students as one value: any of them changed (or a number now a student's) changes it."""
    digest = hashlib.sha256()
    for s in sorted(students, key=lambda s: s["registration_number"]):
        digest.update(("|".join(str(s[f]) for f in ("pk", "registration_number", *FIELDS)) + "\n").encode())
    return digest.hexdigest()


def _resolve(parsed: ParsedStudents, structure: _Structure):
    """Each good row with its school and programme ids, the rows the database cannot place as
    errors, and the unknown programmes and schools with their rows."""
    labels = parsed.columns.labels
    resolved: list[tuple[StudentRow, int, int, int]] = []
    errors: list[RowError] = []
    unknown: dict[str, dict[str, list[int]]] = {"programmes": {}, "schools": {}}
    for r in parsed.rows:
        school_id, school_problem = structure.find("school", r.school)
        programme_id, programme_problem = structure.find("programme", r.programme)
        ok = True
        if school_problem:
            ok = False
            if school_problem == "unknown":
                unknown["schools"].setdefault(r.school, []).append(r.row)
                errors.append(RowError(r.row, labels["school"], f"no school has the code or name “{r.school}”",
                                       r.school))
            else:
                errors.append(RowError(r.row, labels["school"], f"“{r.school}” is the name of several schools; "
                                                                "write its code", r.school))
        if programme_problem:
            ok = False
            if programme_problem == "unknown":
                unknown["programmes"].setdefault(r.programme, []).append(r.row)
                errors.append(RowError(r.row, labels["programme"], f"no programme has the code or name "
                                                                   f"“{r.programme}”", r.programme))
            else:
                errors.append(RowError(r.row, labels["programme"], f"“{r.programme}” is the name of several "
                                                                   "programmes; write its code", r.programme))
        if ok:
            programme = structure.programmes[programme_id]
            if programme["academic_department__school_id"] != school_id:
                errors.append(RowError(r.row, labels["programme"],
                                       f"{programme['code']} is a programme of "
                                       f"{structure.shown('school_id', programme['academic_department__school_id'])}, "
                                       f"not of {structure.shown('school_id', school_id)}", r.programme))
                ok = False
        if ok:
            resolved.append((r, school_id, programme_id, structure.programmes[programme_id]["academic_department_id"]))
    return resolved, errors, {kind: [[text, rows] for text, rows in sorted(found.items())]
                              for kind, found in unknown.items()}


def _compare(parsed: ParsedStudents) -> tuple[dict, list[RowError]]:
    """Sort the rows into new / changed / unchanged. Three queries (the students in chunks, the
    schools, the programmes), whatever the number of rows."""
    structure = _Structure()
    resolved, errors, unknown = _resolve(parsed, structure)
    existing = _students([*(r.registration_number for r in parsed.rows), *parsed.error_students])
    new, changed, unchanged = [], [], []
    for r, school_id, programme_id, department_id in resolved:
        values = {"last_name": r.last_name, "first_name": r.first_name, "school_id": school_id,
                  "academic_department_id": department_id, "programme_id": programme_id,
                  "expected_graduation_year": r.graduation_year, "is_resident": r.is_resident, "email": r.email,
                  "phone": r.phone}
        student = existing.get(r.registration_number)
        if student is None:
            new.append([r.registration_number, r.row, {f: (NEW_DEFAULTS[f] if values[f] is None and f in NEW_DEFAULTS
                                                         else values[f]) for f in FIELDS},
                        {"school": structure.shown("school_id", school_id),
                         "programme": structure.shown("programme_id", programme_id)}])
            continue
        write = {f: (student[f] if values[f] is None else values[f]) for f in FIELDS}
        diffs = [[LABELS[f], structure.shown(f, student[f]), structure.shown(f, write[f])]
                 for f in FIELDS if write[f] != student[f] and f != "academic_department_id"]
        if write["academic_department_id"] != student["academic_department_id"] and not diffs:
            diffs = [[LABELS["academic_department_id"], str(student["academic_department_id"]),
                      str(write["academic_department_id"])]]
        if diffs:
            changed.append([student["pk"], r.registration_number, r.row, write, diffs])
        else:
            unchanged.append([student["pk"], r.registration_number, r.row])
    seen = [s for reg, s in existing.items()]
    skipped = [[row, SKIPPED_WHY.get(parsed.skipped_why.get(row, ""), "not data")] for row in parsed.skipped_rows]
    plan = {"version": 1, "new": new, "changed": changed, "unchanged": unchanged, "unknown": unknown,
            "skipped": skipped, "names": sorted({r.registration_number for r in parsed.rows} | parsed.error_students),
            "seen": _fingerprint(seen), "seen_count": len(seen), "seen_at": timezone.now().isoformat()}
    return plan, errors


def student_import_preview(*, file, acting_user, system: bool = False) -> StudentImport:
    """Read a list of graduands and compare it with the students, changing nothing but the new
    StudentImport (previewed, with counts, the plan and the row errors). Refused (ValidationError,
    nothing written): the user is not the registry (`permissions.may_import_students`; no user only
    with `system`, a command run without --user); the file is empty, too big, not a spreadsheet, or
    has no header row with the required columns (ImportFileError)."""
    _check_may_import(acting_user, system)
    data, name = read_upload(file, default_name="graduands")
    parsed = parse_students(data)             # before storing anything: an unreadable file leaves no trace
    si = new_import(StudentImport, data, name, uploaded_by=acting_user, status=SI.PREVIEWED)
    plan, errors = _compare(parsed)
    all_errors = sorted([*parsed.errors, *errors], key=lambda e: (e.row, e.column))
    warnings = []
    earlier = earlier_application(si)
    if earlier:
        warnings.append(earlier)
    warnings.extend(parsed.preview_warnings())
    si.plan = plan
    si.warnings = warnings
    si.errors = [e.as_dict() for e in all_errors]
    si.rows_total = parsed.rows_read
    si.new_count, si.changed_count = len(plan["new"]), len(plan["changed"])
    si.unchanged_count, si.skipped_count = len(plan["unchanged"]), len(plan["skipped"])
    si.error_count = len({e.row for e in all_errors})
    save_tracked(si, user=acting_user, reason=as_system(f"{WHAT} previewed", system and acting_user is None))
    return si


def student_import_apply(*, student_import: StudentImport, acting_user, skip_errors: bool = False,
                         wait: float | None = None, system: bool = False) -> StudentImport:
    """Apply a previewed graduand import: create and update the students as the preview showed, in
    one transaction, with history naming the import ("Created by graduand import #3
    (cohort2026.xlsx)"). Never deletes a student. One graduand import applies at a time: while
    another runs, this one waits up to `wait` seconds (CONFIRM_WAIT) and is refused, still previewed.
    Refused (ValidationError, nothing written): the user is not the registry (any more); not
    previewed (applied, failed, cancelled); the file had errors and `skip_errors` is False; any
    student the file names changed since the preview, or one of its new students now exists (code
    "stale": the import is marked failed, and previewing its file again shows what it would do now)."""
    si = student_import
    si.refresh_from_db(fields=["status", "error_count"])
    _check_may_import(acting_user, system)
    if si.status == SI.PREVIEWED and si.error_count and not skip_errors:
        raise ValidationError(f"The file has {si.error_count} row{'s' if si.error_count != 1 else ''} with errors; "
                              "fix them or confirm skipping them.", code="has_errors")
    system_user = system and acting_user is None
    applied = import_confirm(si, lock=(APPLY_LOCK, 0), wait=CONFIRM_WAIT if wait is None else wait,
                             acting_user=acting_user, what=WHAT, system=system_user,
                             busy="Another graduand import is being applied; confirm this one when it has finished.",
                             apply=lambda locked: _apply(locked, acting_user=acting_user, system=system_user))
    for name in ("status", "applied_at", "new_count", "changed_count", "unchanged_count"):
        setattr(si, name, getattr(applied, name))
    return applied


def _locked_students(numbers) -> list[dict]:
    out = []
    for part in chunked(sorted(set(numbers)), 2000):
        out += list(Student.objects.filter(registration_number__in=part).select_for_update().order_by("pk")
                    .values("pk", "registration_number", *FIELDS))
    return out


def _refuse_if_stale(si: StudentImport, students: list[dict]) -> None:
    plan = si.plan or {}
    if _fingerprint(students) == plan.get("seen"):
        return
    since = plan.get("seen_at")
    changes = Student.history.filter(registration_number__in=plan.get("names", [])[:2000])
    if since:
        changes = changes.filter(history_date__gt=since)
    last = changes.select_related("history_user").order_by("-history_date").first()
    who = ""
    if last is not None:
        name = getattr(last.history_user, "email", None) or "the system"
        who = (f" ({last.registration_number} last by {name}, "
               f"{timezone.localtime(last.history_date):%d %b %Y %H:%M})")
    raise ValidationError(f"Students in this file changed since the preview{who}: it compared the file with "
                          f"{plan.get('seen_count', 0)} students, and they are now {len(students)} or differ. Preview "
                          "the file again and confirm what it then shows.", code="stale")


def _apply(si: StudentImport, *, acting_user, system: bool) -> None:
    """The writes, inside import_confirm's transaction and lock. The students the file names are
    locked (in id order) while they are compared with what the preview saw, so nobody changes one
    of them until this commits."""
    plan = si.plan or {}
    _refuse_if_stale(si, _locked_students(plan.get("names", [])))
    label = import_label(si)
    new = [dict(registration_number=reg, admission_year=admission_year_from(reg) or 0, **values)
           for reg, _row, values, *_ in plan.get("new", [])]
    # plain rows (executemany) and their history copied by the database: 50,000 new graduands
    # through model instances cost more than the rest of the apply
    insert_new(Student, new)
    numbers, reg_field = [n["registration_number"] for n in new], Student._meta.get_field("registration_number")
    for part in chunked(numbers, 5000):
        where, params = any_of(quote("registration_number"), part, reg_field)
        insert_history_select(Student, where, params, history_type="+", user=acting_user,
                              reason=as_system(f"Created by {label}", system))
    updates = [dict(id=sid, **values) for sid, _reg, _row, values, _diffs in plan.get("changed", [])]
    bulk_update_tracked(updates, Student, list(FIELDS), user=acting_user,
                        reason=as_system(f"Updated by {label}", system))
    si.new_count, si.changed_count = len(new), len(updates)
    si.plan = {**plan, "invited": _invite_new_logins(plan.get("names", []), label=label, acting_user=acting_user,
                                                     system=system)}


def _invite_new_logins(numbers, *, label: str, acting_user, system: bool) -> int:
    """Invite every student of the file who has an email address and no login yet (a student
    invited before has one, so importing the same file again sends nothing twice); the links go
    after commit. Returns how many were invited."""
    ids = []
    for part in chunked(sorted(set(numbers)), 2000):
        ids += list(Student.objects.filter(registration_number__in=part, user__isnull=True).exclude(email="")
                    .order_by("pk").values_list("pk", flat=True))
    if not ids:
        return 0
    from .accounts import students_invite
    result = students_invite(student_ids=ids, acting_user=acting_user, system=True,
                             reason=as_system(f"invited by {label}", system))
    return len(result.done)


def student_import_cancel(*, student_import: StudentImport, acting_user, system: bool = False) -> StudentImport:
    """Drop a previewed graduand import: nothing is applied. Refused: the user is not the registry;
    it is not previewed."""
    _check_may_import(acting_user, system)
    return import_cancel(student_import, acting_user=acting_user, what=WHAT, system=system and acting_user is None)


def student_import_preview_again(*, student_import: StudentImport, acting_user, system: bool = False) -> StudentImport:
    """Preview the stored file of an import again, as a new import compared with the students as
    they are now (after a stale preview was refused). Refused: as `student_import_preview`; the
    import is applied; its file is gone."""
    si = student_import
    _check_may_import(acting_user, system)
    if si.status == SI.APPLIED:
        raise ValidationError(f"{si} was applied; there is nothing to preview again.", code="applied")
    data = stored_bytes(si)
    return student_import_preview(file=ContentFile(data, name=si.original_name or "graduands"),
                                  acting_user=acting_user, system=system)
