"""Budget (DESIGN.md): import 100,000 balance rows (xlsx), every balance changed: preview + apply
together ≤ 1.5× the time openpyxl alone needs to read the same file in read-only mode; peak memory
≤ 400 MB; queries per 1,000 rows constant. Beside it: python-calamine reading the file, and a plain
django-import-export ModelResource with default options (the baseline to beat).

    .venv/bin/python benchmarks/import_balances.py [--rows 100000] [--requests 0.1] [--baseline-rows 10000]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/import_balances.py

The world: N students with a FinanceRecord and an active FIN import hold each (history included,
loaded with core.bulk_load); a share of them (--requests) have an open request with a pending FIN
approval, so rule 5 decides approvals too. The file changes every balance: a third go to zero or a
credit (hold released, FIN approved), the rest to a new amount (hold amount updated, FIN rejected).

Each measurement runs in a forked child process, so its time and its peak resident memory are its
own (peak RSS includes the ~100 MB of the loaded Django process). Queries are counted with a
connection execute wrapper (an executemany counts once). The ModelResource saves row by row with
several queries each; on 100,000 rows that takes minutes, so it runs on the first --baseline-rows
rows and its time is extrapolated linearly (said so in the output).
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import OUT, configure  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(func, *args):
    """Run func(*args) in a forked process; return (seconds, peak RSS MB, queries, result)."""
    from django.db import connections
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()

    def target():
        from django.db import connection
        calls = [0]

        def count(execute, sql, params, many, context):
            calls[0] += 1
            return execute(sql, params, many, context)
        with connection.execute_wrapper(count):
            start = time.perf_counter()
            result = func(*args)
            seconds = time.perf_counter() - start
        child.send((seconds, peak_mb(), calls[0], result))
        child.close()

    proc = ctx.Process(target=target)
    proc.start()
    out = parent.recv()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"child failed with {proc.exitcode}")
    return out


def new_balance(i: int) -> Decimal:
    if i % 3 == 0:
        return Decimal(-(i % 500)) if i % 2 else Decimal(0)       # cleared or in credit
    return Decimal(2000 + i % 9000) + Decimal("0.50")


def baseline_balance(i: int) -> Decimal:
    return new_balance(i) + 7


def build_world(n: int, share_requests: float):
    from django.db import transaction
    from django.utils import timezone

    from core.bulk_load import load
    from core.models import (AcademicDepartment, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department,
                             FinanceRecord, Hold, Programme, School, Student, User)
    from core.services.finance import finance_hold_reason
    admin = User.objects.get(email="admin@clearance.test")
    school = School.objects.get(code="SCE")
    dept = AcademicDepartment.objects.get(school=school, code="CS")
    programme = Programme.objects.get(academic_department=dept)
    cycle = ClearanceCycle.objects.order_by("-opens_on").first()
    fin = Department.objects.get(code="FIN")
    now = timezone.now()
    with transaction.atomic():
        students = load([dict(registration_number=reg(i), admission_year=2030 + i // 90000, first_name="Bench",
                              last_name=f"Student {i}", school_id=school.pk, academic_department_id=dept.pk,
                              programme_id=programme.pk, expected_graduation_year=cycle.graduation_year)
                         for i in range(n)], Student, user=admin, reason="benchmark")
        old = [Decimal(1000 + i % 50) for i in range(n)]
        load([dict(student_id=s["id"], tuition_balance=old[i]) for i, s in enumerate(students)], FinanceRecord,
             user=admin, reason="benchmark")
        load([dict(department_id=fin.pk, student_id=s["id"], reason=finance_hold_reason(old[i]), amount=old[i],
                   source="balance_import", status="active", placed_by_id=admin.pk, placed_at=now)
              for i, s in enumerate(students)], Hold, user=admin, reason="benchmark")
        with_request = students[: int(n * share_requests)]
        requests = load([dict(student_id=s["id"], cycle_id=cycle.pk, status="on_hold", submitted_at=now)
                         for s in with_request], ClearanceRequest, user=admin, reason="benchmark")
        load([dict(request_id=r["id"], department_id=fin.pk, status="pending", waiting_since=now)
              for r in requests], ClearanceApproval, user=admin, reason="benchmark")
    return len(requests)


def reg(i: int) -> str:
    # five-digit numbers never clash with seed_demo's four-digit ones
    return f"SCE/CS/{10000 + i % 90000:05d}/{2030 + i // 90000}"


def write_xlsx(path: Path, n: int, balance):
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Balances")
    ws.append(["registration_number", "name", "tuition_balance"])
    for i in range(n):
        ws.append([reg(i), f"Bench Student {i}", float(balance(i))])
    wb.save(path)


def read_openpyxl(path):
    from openpyxl import load_workbook
    wb = load_workbook(path, read_only=True, data_only=True)
    rows = 0
    for ws in wb.worksheets:
        for _ in ws.iter_rows(values_only=True):
            rows += 1
    wb.close()
    return rows


def read_calamine(path):
    from python_calamine import CalamineWorkbook
    wb = CalamineWorkbook.from_path(str(path))
    return sum(len(wb.get_sheet_by_name(name).to_python()) for name in wb.sheet_names)


def ours(path):
    from django.core.files import File

    from core.models import User
    from core.services.balances import balances_import_apply, balances_import_preview
    user = User.objects.get(email="finance@clearance.test")
    with open(path, "rb") as fh:
        bi = balances_import_preview(file=File(fh, name=Path(path).name), acting_user=user)
    preview_done = time.perf_counter()
    bi = balances_import_apply(balance_import=bi, acting_user=user)
    return dict(pk=bi.pk, updated=bi.updated_count, unchanged=bi.unchanged_count, errors=bi.error_count,
                not_found=bi.not_found_count, preview_done=preview_done)


def import_export(path):
    import tablib
    from import_export import fields, resources, widgets

    from core.models import FinanceRecord, Student

    class FinanceRecordResource(resources.ModelResource):
        registration_number = fields.Field(attribute="student", column_name="registration_number",
                                           widget=widgets.ForeignKeyWidget(Student, field="registration_number"))

        class Meta:
            model = FinanceRecord
            fields = ("registration_number", "tuition_balance")
            import_id_fields = ("registration_number",)

    with open(path, "rb") as fh:
        dataset = tablib.Dataset().load(fh.read(), format="xlsx")
    result = FinanceRecordResource().import_data(dataset, dry_run=False)
    return dict(rows=len(dataset), errors=len(result.row_errors()) + len(result.base_errors),
                invalid=len(result.invalid_rows), totals=dict(result.totals))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=float, default=0.1, help="share of students with an open FIN approval")
    parser.add_argument("--baseline-rows", type=int, default=10_000)
    args = parser.parse_args()
    n = args.rows
    configure("import_balances")
    from django.db import connection
    from django.db.models import Count

    from core.demo import seed_demo
    from core.models import BalanceImport, ClearanceApproval, FinanceRecord, Hold

    t = time.perf_counter()
    seed_demo(students=1, password="benchmark-pass")
    # built in children so the measured children do not inherit the set-up's memory
    approvals = in_child(build_world, n, args.requests)[3]
    with connection.cursor() as cursor:
        # as a database in use is: analysed, and on PostgreSQL vacuumed (else autovacuum starts on
        # the tables just loaded in the middle of the measurements, and competes for the 2 cores)
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    path = OUT / f"balances_{n}.xlsx"
    in_child(write_xlsx, path, n, new_balance)
    baseline_path = OUT / f"balances_{args.baseline_rows}_baseline.xlsx"
    in_child(write_xlsx, baseline_path, min(args.baseline_rows, n), baseline_balance)
    print(f"parent process after set-up: peak {peak_mb():.0f} MB (children start from this)")
    print(f"set-up: {n:,} students with finance records and FIN holds, {approvals:,} open FIN approvals; "
          f"{path.name} {path.stat().st_size / 1e6:.1f} MB; {time.perf_counter() - t:.0f}s "
          f"on {connection.vendor}")

    o_s, o_mem, _, o_rows = in_child(read_openpyxl, path)
    print(f"openpyxl read-only, iterate {o_rows:,} rows:   {o_s:7.2f}s  peak {o_mem:6.0f} MB   (baseline)")
    c_s, c_mem, _, c_rows = in_child(read_calamine, path)
    print(f"python-calamine read {c_rows:,} rows:          {c_s:7.2f}s  peak {c_mem:6.0f} MB   "
          f"({o_s / c_s:.1f}x faster than openpyxl)")

    before = (FinanceRecord.history.count(), Hold.history.count(), ClearanceApproval.history.count())
    s, mem, queries, info = in_child(ours, path)
    after = (FinanceRecord.history.count(), Hold.history.count(), ClearanceApproval.history.count())
    BalanceImport.objects.get(pk=info["pk"]).file.delete(save=False)      # the stored upload: not worth keeping
    ratio = s / o_s
    print(f"ours: preview + apply {n:,} rows:           {s:7.2f}s  peak {mem:6.0f} MB   "
          f"queries {queries} ({queries / (n / 1000):.1f} per 1,000 rows)")
    print(f"      updated {info['updated']:,}, unchanged {info['unchanged']:,}, not found {info['not_found']}, "
          f"errors {info['errors']}; history rows written: finance records {after[0] - before[0]:,}, "
          f"holds {after[1] - before[1]:,}, approvals {after[2] - before[2]:,}")
    active = Hold.objects.filter(department__code="FIN", status="active").count()
    decided = dict(ClearanceApproval.objects.filter(department__code="FIN").values_list("status")
                   .annotate(n=Count("pk")).values_list("status", "n").order_by())
    print(f"      FIN holds active after: {active:,}; FIN approvals by status: {decided}")
    print(f"ratio ours / openpyxl read-only: {ratio:.2f}x  (budget ≤ 1.5x)   peak {mem:.0f} MB (budget ≤ 400 MB)")

    b_n = min(args.baseline_rows, n)
    b_s, b_mem, b_queries, b_info = in_child(import_export, baseline_path)
    scale = n / b_n
    print(f"django-import-export ModelResource (defaults), {b_n:,} rows: {b_s:7.2f}s  peak {b_mem:6.0f} MB   "
          f"queries {b_queries} ({b_queries / (b_n / 1000):.0f} per 1,000 rows)  totals {b_info['totals']} "
          f"errors {b_info['errors']}")
    if scale != 1:
        print(f"      extrapolated to {n:,} rows (×{scale:g}, linear): ~{b_s * scale:.0f}s — run on {b_n:,} rows "
              "because row-by-row saving on the full file takes minutes")
    print(f"ratio ModelResource / ours: {b_s * scale / s:.1f}x slower")
    ok = ratio <= 1.5 and mem <= 400 and info["updated"] == n
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
