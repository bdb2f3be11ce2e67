"""Budget (DESIGN.md): import 100,000 balance rows (xlsx), every balance changed: preview + apply
together ≤ 1.5× the time openpyxl alone needs to read the same file in read-only mode; peak memory
≤ 400 MB; queries per 1,000 rows constant. Beside it: python-calamine reading the file, and a plain
django-import-export ModelResource with default options (the baseline to beat).

    .venv/bin/python benchmarks/import_balances.py [--rows 100000] [--baseline-rows 10000] [--profile FILE]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/import_balances.py
    (BENCH_OUT=/some/dir puts the SQLite file, the spreadsheets and the upload there)

The world is graduation season, the hard case (DESIGN.md "Budgets"): N students, every one with an
open request in the open cycle and one approval per applicable office (stage 1 decided in a mix,
later stages pending), a FinanceRecord each, and FIN agreeing with rule 5 before the import: who
owes (50%) has an active FIN import hold of the amount and a rejected FIN approval naming it (35%)
or a pending one (15%, request opened since the last import); the others have FIN approved. Loaded
with core.bulk_load (history included), not timed. The file changes every balance: half the
debtors pay off (hold released, FIN approved), the others owe a new amount (hold amount updated,
FIN re-rejected naming it); 45% of those who owed nothing now owe (hold placed, FIN rejected). So
~40% of the FIN approvals flip, ~72% are decided by the import, and request statuses follow. Printed
after the run: what the import decided, placed and released, and rule 5 checked on the result.

Each measurement runs in a forked child process, so its time and its peak resident memory are its
own (peak RSS includes the ~100 MB of the loaded Django process). Queries are counted with a
connection execute wrapper (an executemany counts once). The ModelResource saves row by row with
several queries each; on 100,000 rows that takes minutes, so it runs on the first --baseline-rows
rows and its time is extrapolated linearly (said so in the output).
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import time
from collections import Counter
from datetime import timedelta
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


# --- the season -------------------------------------------------------------------------------
# Every student has an open request in the open cycle, with one approval per applicable office, and
# before the import the FIN approvals agree with rule 5: who owes has an active FIN import hold of
# the amount and a rejected FIN approval naming it, or a pending one (request opened since the last
# import); who owes nothing has FIN approved. The file then changes every balance, and ~40% of the
# FIN approvals flip (half the debtors pay off, 45% of the others get a new balance).
SEED = 2026
OWED_REJECTED, OWED_PENDING = 0.35, 0.15       # the other 50% owe nothing: FIN approved
PAY_OFF = 0.5                                  # of those who owe: the file clears them (zero or credit)
NEW_DEBT = 0.45                                # of those who owe nothing: the file gives them a balance
OTHER_OFFICE = (("approved", 55), ("pending", 35), ("rejected", 10))   # stage-1 offices but FIN
CHUNK = 10_000                                 # students seeded per step (memory stays flat)


def _kes(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def fin_case(i: int) -> tuple[str, Decimal, Decimal]:
    """Student i's FIN approval status before the import, stored balance before, balance in the
    file. Deterministic in i: the seeding and the file writer (other processes) agree on it."""
    r = random.Random(SEED * 1_000_003 + i)
    x = r.random()
    if x < OWED_REJECTED + OWED_PENDING:
        status = "rejected" if x < OWED_REJECTED else "pending"
        cents = r.randrange(500_00, 90_000_00, 50)
        if r.random() < PAY_OFF:
            new = _kes(r.choice([0, 0, 0, -r.randrange(1_00, 5_000_00, 100)]))        # paid off, some overpaid
        elif r.random() < 0.6:
            new = _kes(cents - r.randrange(50_00, cents, 50))                         # paid part of it
        else:
            new = _kes(cents + 5_500_00)                                              # graduation fee added
        return status, _kes(cents), new
    cents = -r.choice([0, 0, 0, 500_00, 1_200_00, r.randrange(1_00, 3_000_00, 100)])
    if r.random() < NEW_DEBT:
        new = _kes(r.randrange(500_00, 90_000_00, 50))
    else:
        new = _kes(cents - r.randrange(1_00, 2_000_00, 100))                          # more credit
    return "approved", _kes(cents), new


def new_balance(i: int) -> Decimal:
    return fin_case(i)[2]


def baseline_balance(i: int) -> Decimal:
    return new_balance(i) + 7


def build_world(n: int, logins: float = 0.0) -> dict:
    """Seed the season for n students with core.bulk_load (executemany, history rows included),
    CHUNK students at a time; a share `logins` of them have a login (User), so decisions notify
    them. Returns counts for the set-up line."""
    from types import SimpleNamespace

    from django.db import transaction
    from django.utils import timezone

    from core.bulk_load import load
    from core.demo import REJECT_REASONS
    from core.models import (AcademicDepartment, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department,
                             FinanceRecord, Hold, Programme, School, Student, User)
    from core.services.finance import finance_hold_reason
    from core.services.status import derive_request_status
    admin = User.objects.get(email="admin@clearance.test")
    school = School.objects.get(code="SCE")
    dept = AcademicDepartment.objects.get(school=school, code="CS")
    programme = Programme.objects.get(academic_department=dept)
    cycle = ClearanceCycle.objects.order_by("-opens_on").first()
    assert cycle.is_open, "the season needs an open cycle"
    offices = [(d, {s.pk for s in d.schools.all()}) for d in
               Department.objects.filter(is_active=True).prefetch_related("schools").order_by("stage", "code")]
    fin = next(d for d, _ in offices if d.code == "FIN")
    now = timezone.now()
    statuses, weights = zip(*OTHER_OFFICE)
    counts = Counter()
    hold_reason = {}
    with transaction.atomic():
        for start in range(0, n, CHUNK):
            idx = range(start, min(n, start + CHUNK))
            rngs = [random.Random(SEED * 7_000_003 + i) for i in idx]
            cases = [fin_case(i) for i in idx]
            with_login = [i for i in idx if (i * 0.6180339887) % 1 < logins]
            users = {i: u["id"] for i, u in zip(with_login, load(
                [dict(email=f"bench.{i}@students.clearance.test", full_name=f"Bench Student {i}", password="!")
                 for i in with_login], User, user=admin, reason="benchmark"))}
            counts["logins"] += len(users)
            students = load([dict(registration_number=reg(i), admission_year=2030 + i // 90000, first_name="Bench",
                                  last_name=f"Student {i}", school_id=school.pk, academic_department_id=dept.pk,
                                  programme_id=programme.pk, expected_graduation_year=cycle.graduation_year,
                                  is_resident=r.random() < 0.4, user_id=users.get(i))
                             for i, r in zip(idx, rngs)], Student, user=admin, reason="benchmark")
            load([dict(student_id=s["id"], tuition_balance=old) for s, (_, old, _) in zip(students, cases)],
                 FinanceRecord, user=admin, reason="benchmark")
            holds, requests, approvals_of = [], [], []
            for s, r, (fin_status, old, _) in zip(students, rngs, cases):
                waited = timedelta(days=r.randint(0, 20), hours=r.randint(0, 23))
                student = SimpleNamespace(is_resident=s["is_resident"], school_id=s["school_id"])
                items = []
                for d, school_ids in offices:
                    if not d.applies_to_student(student, school_ids):
                        continue
                    if d.pk == fin.pk:
                        status = fin_status
                    elif d.stage == 1:
                        status = r.choices(statuses, weights)[0]
                    else:
                        status = "pending"          # a later stage opens only once stage 1 is cleared
                    reason = ""
                    if d.pk == fin.pk and old > 0:
                        if old not in hold_reason:
                            hold_reason[old] = finance_hold_reason(old)
                        holds.append(dict(department_id=fin.pk, student_id=s["id"], reason=hold_reason[old],
                                          amount=old, source=Hold.Source.BALANCE_IMPORT, placed_by_id=admin.pk,
                                          placed_at=now - waited * 2, created_at=now - waited * 2))
                        reason = hold_reason[old] if status == "rejected" else ""
                    elif status == "rejected":
                        reason = REJECT_REASONS.get(d.code, "Not cleared by the office")
                        holds.append(dict(department_id=d.pk, student_id=s["id"], reason=reason,
                                          placed_by_id=admin.pk, placed_at=now - waited, created_at=now - waited))
                    decided = status != "pending"
                    items.append(dict(department_id=d.pk, status=status, reason=reason, waiting_since=now - waited,
                                      decided_by_id=admin.pk if decided else None,
                                      decided_at=now - waited / 2 if decided else None, created_at=now - waited))
                    counts[f"{d.code} {status}"] += 1
                status = derive_request_status([a["status"] for a in items])
                counts[f"request {status}"] += 1
                requests.append(dict(student_id=s["id"], cycle_id=cycle.pk, status=status, submitted_at=now - waited,
                                     opened_by_id=admin.pk, created_at=now - waited))
                approvals_of.append(items)
            requests = load(requests, ClearanceRequest, user=admin, reason="benchmark")
            approvals = []
            for req, items in zip(requests, approvals_of):
                for a in items:
                    a["request_id"] = req["id"]
                approvals.extend(items)
            load(approvals, ClearanceApproval, user=admin, reason="benchmark")
            load(holds, Hold, user=admin, reason="benchmark")
            counts["approvals"] += len(approvals)
            counts["holds"] += len(holds)
    return dict(counts)


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


def ours(path, profile=None):
    """Preview then apply, as the officer does; with `profile`, the apply runs under cProfile and its
    statistics go to that file."""
    from django.core.files import File

    from core.models import User
    from core.services.balances import balances_import_apply, balances_import_preview
    user = User.objects.get(email="finance@clearance.test")
    start = time.perf_counter()
    with open(path, "rb") as fh:
        bi = balances_import_preview(file=File(fh, name=Path(path).name), acting_user=user)
    preview_done = time.perf_counter()
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    bi = balances_import_apply(balance_import=bi, acting_user=user)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    return dict(pk=bi.pk, updated=bi.updated_count, unchanged=bi.unchanged_count, errors=bi.error_count,
                not_found=bi.not_found_count, preview_s=preview_done - start,
                apply_s=time.perf_counter() - preview_done)


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


SNAPSHOTS = ("bench_fin_approvals", "bench_fin_holds", "bench_requests")


def snapshot_before(fin_id: int) -> None:
    """What the import starts from, kept by the database itself (a Python copy in this process would
    be inherited by the measured children and counted in their memory)."""
    from django.db import connection

    from core.models import ClearanceApproval, ClearanceRequest, Hold
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        for name in SNAPSHOTS:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TABLE bench_fin_approvals AS SELECT id, status FROM "
                       f"{q(ClearanceApproval._meta.db_table)} WHERE department_id = %s", [fin_id])
        cursor.execute(f"CREATE TABLE bench_fin_holds AS SELECT id, amount FROM {q(Hold._meta.db_table)} "
                       f"WHERE department_id = %s AND status = 'active'", [fin_id])
        cursor.execute(f"CREATE TABLE bench_requests AS SELECT id, status FROM {q(ClearanceRequest._meta.db_table)}")


def what_moved(fin_id: int, import_id: int) -> dict:
    """Transitions since `snapshot_before`, and rule 5 checked on the students the import touched."""
    from django.conf import settings
    from django.db import connection

    from core.models import ClearanceApproval, ClearanceRequest, FinanceRecord, Hold
    q = connection.ops.quote_name
    approvals, holds, requests = (q(m._meta.db_table) for m in (ClearanceApproval, Hold, ClearanceRequest))
    records = q(FinanceRecord._meta.db_table)
    threshold = Decimal(str(settings.FINANCE_HOLD_THRESHOLD))
    out = {}
    with connection.cursor() as cursor:
        def rows(sql, params=()):
            cursor.execute(sql, list(params))
            return cursor.fetchall()
        out["fin"] = {(b, a): k for b, a, k in rows(
            f"SELECT b.status, a.status, COUNT(*) FROM bench_fin_approvals b JOIN {approvals} a ON a.id = b.id "
            f"GROUP BY b.status, a.status")}
        out["by_import"] = dict(rows(f"SELECT status, COUNT(*) FROM {approvals} WHERE decided_by_import_id = %s "
                                     f"GROUP BY status", [import_id]))
        out["requests"] = {(b, a): k for b, a, k in rows(
            f"SELECT b.status, r.status, COUNT(*) FROM bench_requests b JOIN {requests} r ON r.id = b.id "
            f"WHERE b.status <> r.status GROUP BY b.status, r.status")}
        out["placed"] = rows(f"SELECT COUNT(*) FROM {holds} h WHERE department_id = %s AND status = 'active' AND "
                             f"NOT EXISTS (SELECT 1 FROM bench_fin_holds b WHERE b.id = h.id)", [fin_id])[0][0]
        out["released"] = rows(f"SELECT COUNT(*) FROM bench_fin_holds b JOIN {holds} h ON h.id = b.id "
                               f"WHERE h.status = 'released'")[0][0]
        out["amount_changed"] = rows(f"SELECT COUNT(*) FROM bench_fin_holds b JOIN {holds} h ON h.id = b.id "
                                     f"WHERE h.status = 'active' AND h.amount <> b.amount")[0][0]
        active_fin = (f"SELECT 1 FROM {holds} h WHERE h.department_id = %s AND h.status = 'active' "
                      f"AND h.student_id = f.student_id")
        out["rule5"] = rows(
            # a balance above the threshold ⇔ exactly one active import hold of that amount
            f"SELECT COUNT(*) FROM {records} f WHERE f.last_import_id = %s AND ("
            f" (f.tuition_balance > %s AND (SELECT COUNT(*) FROM {holds} h WHERE h.department_id = %s "
            f"   AND h.status = 'active' AND h.source = 'balance_import' AND h.student_id = f.student_id "
            f"   AND h.amount = f.tuition_balance) <> 1)"
            f" OR (f.tuition_balance <= %s AND EXISTS ({active_fin} AND h.source = 'balance_import')))",
            [import_id, threshold, fin_id, threshold, fin_id])[0][0]
        out["rule5"] += rows(
            # FIN approval of an open request approved ⇔ no FIN hold active
            f"SELECT COUNT(*) FROM {approvals} a JOIN {requests} r ON r.id = a.request_id "
            f"JOIN {records} f ON f.student_id = r.student_id WHERE a.department_id = %s AND f.last_import_id = %s "
            f"AND r.status NOT IN ('completed', 'revoked') AND ((a.status = 'approved') = EXISTS ({active_fin}))",
            [fin_id, import_id, fin_id])[0][0]
        for name in SNAPSHOTS:
            cursor.execute(f"DROP TABLE {name}")
    return out


def print_profile(path, top=30):
    import pstats
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=10_000)
    parser.add_argument("--logins", type=float, default=0.0,
                        help="share of students with a login, whom decisions notify (seed_demo's students have none)")
    parser.add_argument("--profile", metavar="FILE", help="run only ours, the apply under cProfile (stats to FILE, "
                                                          "top functions printed); timings are the profiler's")
    args = parser.parse_args()
    n = args.rows
    configure("import_balances")
    from django.db import connection
    from django.db.models import Count

    from core.demo import seed_demo
    from core.models import BalanceImport, ClearanceApproval, Department, FinanceRecord, Hold, Notification

    t = time.perf_counter()
    seed_demo(students=1, password="benchmark-pass")
    # built in children so the measured children do not inherit the set-up's memory
    seeded = in_child(build_world, n, args.logins)[3]
    fin_id = Department.objects.get(code="FIN").pk
    snapshot_before(fin_id)
    with connection.cursor() as cursor:
        # as a database in use is: analysed, and on PostgreSQL vacuumed (else autovacuum starts on
        # the tables just loaded in the middle of the measurements, and competes for the 2 cores)
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    path = OUT / f"balances_{n}.xlsx"
    in_child(write_xlsx, path, n, new_balance)
    baseline_path = OUT / f"balances_{args.baseline_rows}_baseline.xlsx"
    in_child(write_xlsx, baseline_path, min(args.baseline_rows, n), baseline_balance)
    print(f"parent process after set-up: peak {peak_mb():.0f} MB (children start from this)")
    print(f"set-up (season): {n:,} students, each with an open request, {seeded.get('logins', 0):,} with a login; "
          f"{seeded['approvals']:,} approvals, "
          f"{seeded['holds']:,} holds; {path.name} {path.stat().st_size / 1e6:.1f} MB; "
          f"{time.perf_counter() - t:.0f}s on {connection.vendor}")
    fin_before = {k.split()[1]: v for k, v in seeded.items() if k.startswith("FIN ")}
    print(f"      before: FIN approvals {fin_before}; requests "
          f"{ {k.split()[1]: v for k, v in seeded.items() if k.startswith('request ')} }")

    if args.profile:
        s, mem, queries, info = in_child(ours, path, args.profile)
        print(f"ours under cProfile: preview {info['preview_s']:.2f}s, apply {info['apply_s']:.2f}s (profiled), "
              f"peak {mem:.0f} MB, queries {queries}; apply's statistics in {args.profile}")
        print_profile(args.profile)
        return 0

    o_s, o_mem, _, o_rows = in_child(read_openpyxl, path)
    print(f"openpyxl read-only, iterate {o_rows:,} rows:   {o_s:7.2f}s  peak {o_mem:6.0f} MB   (baseline)")
    c_s, c_mem, _, c_rows = in_child(read_calamine, path)
    print(f"python-calamine read {c_rows:,} rows:          {c_s:7.2f}s  peak {c_mem:6.0f} MB   "
          f"({o_s / c_s:.1f}x faster than openpyxl)")

    before = (FinanceRecord.history.count(), Hold.history.count(), ClearanceApproval.history.count())
    notifications = Notification.objects.count()
    s, mem, queries, info = in_child(ours, path)
    after = (FinanceRecord.history.count(), Hold.history.count(), ClearanceApproval.history.count())
    BalanceImport.objects.get(pk=info["pk"]).file.delete(save=False)      # the stored upload: not worth keeping
    ratio = s / o_s
    print(f"ours: preview + apply {n:,} rows:           {s:7.2f}s  peak {mem:6.0f} MB   "
          f"queries {queries} ({queries / (n / 1000):.1f} per 1,000 rows)")
    print(f"      preview {info['preview_s']:.2f}s, apply {info['apply_s']:.2f}s")
    print(f"      updated {info['updated']:,}, unchanged {info['unchanged']:,}, not found {info['not_found']}, "
          f"errors {info['errors']}; history rows written: finance records {after[0] - before[0]:,}, "
          f"holds {after[1] - before[1]:,}, approvals {after[2] - before[2]:,}; notifications "
          f"{Notification.objects.count() - notifications:,}")
    moved = what_moved(fin_id, info["pk"])
    fin = moved["fin"]
    flips = fin.get(("approved", "rejected"), 0) + fin.get(("rejected", "approved"), 0)
    total_fin = sum(fin.values())
    by_import = moved["by_import"]
    print(f"      FIN approvals decided by the import: approved {by_import.get('approved', 0):,}, rejected "
          f"{by_import.get('rejected', 0):,} (of which {fin.get(('rejected', 'rejected'), 0):,} already rejected, "
          "now naming the new amount)")
    print(f"      FIN flips: approved→rejected {fin.get(('approved', 'rejected'), 0):,}, rejected→approved "
          f"{fin.get(('rejected', 'approved'), 0):,} ({flips / max(total_fin, 1):.0%} of {total_fin:,}); "
          f"pending→approved {fin.get(('pending', 'approved'), 0):,}, pending→rejected "
          f"{fin.get(('pending', 'rejected'), 0):,}, still pending {fin.get(('pending', 'pending'), 0):,}")
    print(f"      FIN holds: placed {moved['placed']:,}, released {moved['released']:,}, amount changed "
          f"{moved['amount_changed']:,}; requests whose status moved: "
          + ", ".join(f"{b}→{a} {k:,}" for (b, a), k in sorted(moved["requests"].items())))
    active = Hold.objects.filter(department__code="FIN", status="active").count()
    decided = dict(ClearanceApproval.objects.filter(department__code="FIN").values_list("status")
                   .annotate(n=Count("pk")).values_list("status", "n").order_by())
    print(f"      FIN holds active after: {active:,}; FIN approvals by status: {decided}; "
          f"rule 5 violations among the file's students: {moved['rule5']}")
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
    ok = ratio <= 1.5 and mem <= 400 and info["updated"] == n and moved["rule5"] == 0
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
