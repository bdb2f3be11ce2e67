"""Budget (DESIGN.md): export 100,000 rows to xlsx ≤ 1.5× openpyxl write-only mode writing the same
cells (query included, process start-up excluded); memory flat; csv likewise against csv.writer.
Beside it: a plain django-import-export ModelResource exporting the same requests.

    .venv/bin/python benchmarks/export_report.py [--rows 100000] [--small 10000]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/export_report.py

The world: graduation season's end, the hard case for the graduation list — N students, every one
with a completed request and an approved item per office that applies (six offices, decided on
different days), loaded with core.bulk_load (history included), not timed. The first --small
students are one cohort, the others the next: the same report for that cohort is the small run
for "memory flat" (peak RSS at --small rows vs at N rows, each in a forked child whose set-up memory
is only the loaded Django process).

Ours: `write_report(graduation_list)` — the query, the rows, the file (xlsx: title row, styled
frozen header, number formats; csv: neutralised, local times). Baselines, timed on the same cells
already in memory (what they are given costs them nothing): openpyxl write-only `ws.append` of the
plain values, and `csv.writer.writerows`.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import OUT, configure  # noqa: E402
from import_balances import in_child  # noqa: E402  (forked child: time, peak RSS, queries, result)

CHUNK = 5000


def build_world(n: int, small: int) -> dict:
    from types import SimpleNamespace

    from django.db import transaction
    from django.utils import timezone

    from core.bulk_load import load
    from core.models import (AcademicDepartment, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department,
                             Programme, School, Student, User)
    admin = User.objects.get(email="admin@clearance.test")
    school = School.objects.order_by("pk").first()
    dept = AcademicDepartment.objects.filter(school=school).order_by("pk").first()
    programme = Programme.objects.filter(academic_department=dept).order_by("pk").first()
    cycle = ClearanceCycle.objects.order_by("-opens_on").first()
    offices = [(d, {s.pk for s in d.schools.all()}) for d in Department.objects.filter(is_active=True)]
    year = cycle.graduation_year
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, n, CHUNK):
            idx = range(start, min(n, start + CHUNK))
            students = load([dict(registration_number=f"{school.code}/{dept.code}/{10000 + i % 90000:05d}/"
                                                      f"{2030 + i // 90000}",
                                  admission_year=2030 + i // 90000, first_name="Bench", last_name=f"Student {i}",
                                  school_id=school.pk, academic_department_id=dept.pk, programme_id=programme.pk,
                                  expected_graduation_year=year if i < small else year + 1, is_resident=False)
                             for i in idx], Student, user=admin, reason="benchmark")
            requests = load([dict(student_id=s["id"], cycle_id=cycle.pk, status="completed",
                                  submitted_at=now - datetime.timedelta(days=30), completed_at=now,
                                  opened_by_id=admin.pk) for s in students], ClearanceRequest, user=admin,
                            reason="benchmark")
            approvals = []
            for s, r in zip(students, requests):
                student = SimpleNamespace(is_resident=False, school_id=s["school_id"])
                for k, (d, school_ids) in enumerate(offices):
                    if d.applies_to_student(student, school_ids):
                        approvals.append(dict(request_id=r["id"], department_id=d.pk, status="approved",
                                              waiting_since=now - datetime.timedelta(days=30),
                                              decided_by_id=admin.pk,
                                              decided_at=now - datetime.timedelta(days=20 - k, hours=s["id"] % 24)))
            load(approvals, ClearanceApproval, user=admin, reason="benchmark")
    return {"requests": ClearanceRequest.objects.filter(status="completed").count(),
            "approvals": ClearanceApproval.objects.count(), "cohort_small": year, "cohort_rest": year + 1}


def ours(fmt: str, cohort):
    from core.exports.reports import write_report
    from core.selectors.reports import REPORTS
    report = REPORTS["graduation_list"]
    filters = report.parse({"cohort": cohort} if cohort else {})
    with open(OUT / f"ours.{fmt}", "wb") as fh:
        rows = write_report(report, filters, fmt, fh)
    return rows


def _cells(cohort=None):
    """The report's cells as the files hold them (moments local and naive), in memory."""
    from core.exports import _local_naive
    from core.selectors.reports import REPORTS
    report = REPORTS["graduation_list"]
    filters = report.parse({"cohort": cohort} if cohort else {})
    return report.header(filters), [[_local_naive(v) for v in row] for row in report.rows(filters)]


def baseline_openpyxl():
    import openpyxl
    header, rows = _cells()
    start = time.perf_counter()
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Report")
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(OUT / "baseline.xlsx")
    return time.perf_counter() - start, len(rows)


def baseline_csv():
    header, rows = _cells()
    start = time.perf_counter()
    with open(OUT / "baseline.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return time.perf_counter() - start, len(rows)


def import_export_resource():
    from import_export import resources

    from core.models import ClearanceRequest

    class RequestResource(resources.ModelResource):
        class Meta:
            model = ClearanceRequest

    dataset = RequestResource().export(ClearanceRequest.objects.filter(status="completed"))
    data = dataset.export("xlsx")
    (OUT / "import_export.xlsx").write_bytes(data)
    return len(dataset)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    configure("export_report")
    from django.db import connection

    from core.demo import seed_demo
    t = time.perf_counter()
    seed_demo(students=1, password="benchmark-pass")
    world = in_child(build_world, args.rows, args.small)[3]
    print(f"{connection.vendor}: {world['requests']:,} completed requests, {world['approvals']:,} approvals "
          f"(set-up {time.perf_counter() - t:.0f} s, not timed)")
    rows_all = world["requests"]

    print("\nxlsx, graduation list")
    sec, mb, queries, n = in_child(ours, "xlsx", None)
    base_sec, base_n = in_child(baseline_openpyxl)[3]
    print(f"  ours (query + rows + file) {n:>7,} rows  {sec:6.2f} s  peak {mb:5.0f} MB  {queries} queries")
    print(f"  openpyxl write-only        {base_n:>7,} rows  {base_sec:6.2f} s  (same cells, already in memory)")
    print(f"  ratio {sec / base_sec:.2f}x (budget <= 1.5x)")
    small_sec, small_mb, _, small_n = in_child(ours, "xlsx", world["cohort_small"])
    print(f"  memory: peak {small_mb:.0f} MB at {small_n:,} rows, {mb:.0f} MB at {n:,}: "
          f"{mb / small_mb:.2f}x (budget <= 1.2x)")

    print("\ncsv, graduation list")
    sec, mb, queries, n = in_child(ours, "csv", None)
    base_sec, base_n = in_child(baseline_csv)[3]
    print(f"  ours (query + rows + file) {n:>7,} rows  {sec:6.2f} s  peak {mb:5.0f} MB  {queries} queries")
    print(f"  csv.writer                 {base_n:>7,} rows  {base_sec:6.2f} s  (same cells, already in memory)")
    print(f"  ratio {sec / base_sec:.2f}x (budget <= 1.5x)")
    small_sec, small_mb, _, small_n = in_child(ours, "csv", world["cohort_small"])
    print(f"  memory: peak {small_mb:.0f} MB at {small_n:,} rows, {mb:.0f} MB at {n:,}: "
          f"{mb / small_mb:.2f}x (budget <= 1.2x)")

    print("\nbeside it: django-import-export ModelResource (default options) of the same requests, xlsx")
    sec, mb, queries, n = in_child(import_export_resource)
    print(f"  {n:,} rows  {sec:.2f} s  peak {mb:.0f} MB  {queries} queries")
    assert rows_all >= n


if __name__ == "__main__":
    main()
