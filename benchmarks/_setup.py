"""Shared set-up for the benchmarks: a database of their own (never the development one), Django
configured for it, and helpers to make many clearance items quickly."""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# BENCH_OUT moves the SQLite files, spreadsheets and uploads elsewhere (e.g. a scratch disk)
OUT = Path(os.environ.get("BENCH_OUT") or ROOT / "benchmarks" / "out")


def configure(name: str) -> None:
    """Point Django at the benchmark database: BENCH_DATABASE_URL if given (PostgreSQL), else a
    fresh SQLite file under OUT. Uploads the benchmark makes are stored under OUT too, not in the
    development media folder."""
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ["MEDIA_ROOT"] = str(OUT / "media")
    sys.path.insert(0, str(ROOT))
    if not os.environ.get("BENCH_DATABASE_URL"):
        db = OUT / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    else:
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clearance_admin.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark")
    os.environ["DEBUG"] = "false"
    import django
    django.setup()
    from django.core.management import call_command
    if os.environ.get("BENCH_DATABASE_URL"):
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)


def timed(func, repeat: int = 3):
    """Run func() `repeat` times; return (median seconds, last result)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def make_pending_items(n: int, department_code: str = "LIB"):
    """n students, each with an open request and one pending approval of the office; history rows
    included (core.bulk_load). Returns the approval ids in creation order."""
    from django.utils import timezone

    from core.bulk_load import load
    from core.models import (AcademicDepartment, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department,
                             Programme, School, Student, User)
    admin = User.objects.get(email="admin@clearance.test")
    school = School.objects.get(code="SCE")
    dept = AcademicDepartment.objects.get(school=school, code="CS")
    programme = Programme.objects.get(academic_department=dept)
    cycle = ClearanceCycle.objects.order_by("-opens_on").first()
    office = Department.objects.get(code=department_code)
    start = ClearanceApproval.objects.count()
    # five-digit numbers never clash with seed_demo's four-digit ones
    students = load([dict(registration_number=f"SCE/CS/{10000 + (start + i) % 90000:05d}/{2030 + (start + i) // 90000}",
                          admission_year=2030 + (start + i) // 90000,
                          first_name="Bench", last_name=f"Student {i}", school_id=school.pk,
                          academic_department_id=dept.pk, programme_id=programme.pk,
                          expected_graduation_year=cycle.graduation_year, is_resident=False)
                     for i in range(n)], Student, user=admin, reason="benchmark")
    now = timezone.now()
    requests = load([dict(student_id=s["id"], cycle_id=cycle.pk, status="pending", submitted_at=now)
                     for s in students], ClearanceRequest, user=admin, reason="benchmark")
    approvals = load([dict(request_id=r["id"], department_id=office.pk, status="pending", waiting_since=now)
                      for r in requests], ClearanceApproval, user=admin, reason="benchmark")
    return [a["id"] for a in approvals]
