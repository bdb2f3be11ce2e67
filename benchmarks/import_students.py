"""Issue 12 / DESIGN.md import budget, for the graduand import: 100,000 rows of the student records
system's export (xlsx) → preview + apply together against the time openpyxl alone needs to read the
same file in read-only mode (the balance import's budget: ≤ 1.5×); peak memory; queries per 1,000
rows. The hard case: half the file's students are in the system already and every one of them
changed (hostel, email), the other half are new; every row has an email address and nobody has a
login, so applying also makes 100,000 logins and queues their invitations (README "Graduand imports").

    .venv/bin/python benchmarks/import_students.py [--rows 100000]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/import_students.py

Each measurement runs in a forked child (its own time and peak RSS, ~100 MB of which is Django)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import OUT, configure  # noqa: E402
from import_balances import in_child, peak_mb, read_openpyxl  # noqa: E402

HEADER = ["Adm No", "Surname", "Other Names", "Programme", "School", "Year of Study", "Expected Graduation",
          "Hostel", "Email", "Phone"]


def reg(i: int) -> str:
    # five-digit numbers never clash with seed_demo's four-digit ones; admitted before they graduate
    return f"SCE/CS/{10000 + i % 90000:05d}/{2022 - i // 90000}"


def seed_existing(n: int) -> int:
    """The first n students of the file, as the system has them before (no hostel, an old email)."""
    from core.bulk_load import load
    from core.models import AcademicDepartment, Programme, School, Student, User
    admin = User.objects.get(email="admin@clearance.test")
    school = School.objects.get(code="SCE")
    dept = AcademicDepartment.objects.get(school=school, code="CS")
    programme = Programme.objects.get(academic_department=dept)
    for start in range(0, n, 10_000):
        load([dict(registration_number=reg(i), admission_year=2022 - i // 90000, first_name=f"Other{i}",
                   last_name=f"Surname{i}", email=f"old.{i}@students.example.ac.ke", school_id=school.pk,
                   academic_department_id=dept.pk, programme_id=programme.pk, expected_graduation_year=2026,
                   is_resident=False) for i in range(start, min(n, start + 10_000))],
             Student, user=admin, reason="benchmark")
    return Student.objects.count()


def write_xlsx(path: Path, n: int) -> None:
    from openpyxl import Workbook
    from core.models import Programme
    programme = Programme.objects.select_related("academic_department__school").get(
        academic_department__code="CS", academic_department__school__code="SCE")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Graduands")
    ws.append(["Student records system — graduands 2026"])
    ws.append(HEADER)
    for i in range(n):
        ws.append([reg(i), f"Surname{i}", f"Other{i}", programme.code, "SCE", 4, 2026, "Yes",
                   f"grad.{i}@students.example.ac.ke", f"07{i % 100_000_000:08d}"])
    wb.save(path)


def ours(path):
    from django.core.files import File

    from core.models import User
    from core.services.student_imports import student_import_apply, student_import_preview
    user = User.objects.get(email="registry@clearance.test")
    start = time.perf_counter()
    with open(path, "rb") as fh:
        si = student_import_preview(file=File(fh, name=Path(path).name), acting_user=user)
    preview_done = time.perf_counter()
    si = student_import_apply(student_import=si, acting_user=user)
    return dict(pk=si.pk, new=si.new_count, changed=si.changed_count, unchanged=si.unchanged_count,
                errors=si.error_count, invited=si.invited_count, preview_s=preview_done - start,
                apply_s=time.perf_counter() - preview_done)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    n = args.rows
    configure("import_students")
    from django.db import connection

    from core.demo import seed_demo
    from core.models import Student, StudentImport
    t = time.perf_counter()
    seed_demo(students=1, password="benchmark-pass")
    in_child(seed_existing, n // 2)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    path = OUT / f"graduands_{n}.xlsx"
    in_child(write_xlsx, path, n)
    print(f"set-up: {n // 2:,} of the file's {n:,} students in the system already; {path.name} "
          f"{path.stat().st_size / 1e6:.1f} MB; {time.perf_counter() - t:.0f}s on {connection.vendor}; "
          f"parent peak {peak_mb():.0f} MB")
    o_s, o_mem, _, o_rows = in_child(read_openpyxl, path)
    print(f"openpyxl read-only, iterate {o_rows:,} rows:   {o_s:7.2f}s  peak {o_mem:6.0f} MB   (baseline)")
    s, mem, queries, info = in_child(ours, path)
    StudentImport.objects.get(pk=info["pk"]).file.delete(save=False)
    print(f"ours: preview + apply {n:,} rows:           {s:7.2f}s  peak {mem:6.0f} MB   "
          f"queries {queries} ({queries / (n / 1000):.1f} per 1,000 rows)")
    print(f"      preview {info['preview_s']:.2f}s, apply {info['apply_s']:.2f}s; new {info['new']:,}, changed "
          f"{info['changed']:,}, unchanged {info['unchanged']:,}, errors {info['errors']}, invited {info['invited']:,}; "
          f"students now {Student.objects.count():,}")
    ratio = s / o_s
    print(f"ratio ours / openpyxl read-only: {ratio:.2f}x  (budget ≤ 1.5x)   peak {mem:.0f} MB (budget ≤ 400 MB)")
    ok = ratio <= 1.5 and mem <= 400 and info["new"] + info["changed"] == n
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
