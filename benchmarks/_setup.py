"""Shared set-up for the benchmarks: a database of their own (never the development one), Django
configured for it, and helpers to make many clearance items quickly."""
from __future__ import annotations

import datetime
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
    # the pages are measured signed in by force_login: no second factor to go through
    os.environ["OTP_REQUIRED"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")   # one JSON line per request on the terminal is not the server's cost
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


FIRST_NAMES = ["Amina", "Brian", "Cynthia", "David", "Esther", "Felix", "Grace", "Hassan", "Irene", "James", "Kevin",
               "Lucy", "Mercy", "Nelson", "Otieno", "Purity", "Ruth", "Samuel", "Tabitha", "Victor", "Wanjiru", "Yusuf"]
# 20³ = 8,000 surnames of three syllables: a name search finds a handful of students, as at a university
SYLLABLES = ["ki", "ma", "nu", "we", "ro", "ta", "ja", "li", "so", "be", "ny", "gu", "cha", "o", "ke", "mu",
             "wa", "an", "di", "pe"]


def season_student(k: int) -> dict:
    """The k-th student of the graduation-season data (deterministic: the same k, the same student)."""
    s = SYLLABLES
    surname = (s[k % 20] + s[(k // 20) % 20] + s[(k // 400) % 20]).capitalize()
    return dict(registration_number=f"SCE/CS/{10000 + k % 90000:05d}/{2030 + k // 90000}",
                admission_year=2030 + k // 90000, first_name=FIRST_NAMES[(k // 8000) % 22], last_name=surname)


def make_season(students: int) -> int:
    """Graduation season (DESIGN.md "Budgets"): `students` more students, each with an open request
    and an item of every office — the stage-1 offices mixed (about half pending, the rest approved,
    some rejected or waived), the registry (stage 2) pending. Written by core.bulk_load.copy_in
    (COPY on PostgreSQL), history included. Returns the number of approvals made."""
    import random

    from django.db import transaction
    from django.utils import timezone

    from core.bulk_load import copy_in
    from core.services.status import stages_open
    from core.models import (AcademicDepartment, ClearanceApproval, ClearanceCycle, ClearanceRequest, Department,
                             Programme, School, Student, User)
    if students <= 0:
        return 0
    admin = User.objects.get(email="admin@clearance.test")
    school = School.objects.get(code="SCE")
    dept = AcademicDepartment.objects.get(school=school, code="CS")
    programme = Programme.objects.filter(academic_department=dept).first()
    cycle = ClearanceCycle.objects.order_by("-opens_on").first()
    offices = list(Department.objects.order_by("stage", "code"))
    start = Student.objects.filter(admission_year__gte=2030).count()   # seed_demo's are admitted before
    rng = random.Random(start)
    now = timezone.now()
    day = datetime.timedelta(days=1)
    A = ClearanceApproval.Status
    with transaction.atomic():
        first_student, _ = copy_in(
            ({**season_student(start + i), "school_id": school.pk, "academic_department_id": dept.pk,
              "programme_id": programme.pk, "expected_graduation_year": cycle.graduation_year, "is_resident": True}
             for i in range(students)), Student, user=admin, reason="benchmark", check_keys=False)
        first_request, _ = copy_in(
            (dict(student_id=first_student + i, cycle_id=cycle.pk, status="in_progress",
                  submitted_at=now - 40 * day) for i in range(students)),
            ClearanceRequest, user=admin, reason="benchmark", check_keys=False)

        def approvals():
            for i in range(students):
                rows = []
                for office in offices:
                    waiting = now - datetime.timedelta(seconds=rng.randrange(30 * 86400))
                    roll = rng.random() if office.stage == 1 else 0.0
                    row = dict(request_id=first_request + i, department_id=office.pk, waiting_since=waiting)
                    if roll < 0.5:
                        row["status"] = A.PENDING
                    else:
                        status = A.APPROVED if roll < 0.85 else A.REJECTED if roll < 0.95 else A.WAIVED
                        row.update(status=status, decided_at=min(waiting + day, now), decided_by_id=admin.pk,
                                   reason="" if status == A.APPROVED else "Benchmark reason")
                    rows.append((office.stage, row))
                for (_, row), opened in zip(rows, stages_open((stage, row["status"]) for stage, row in rows)):
                    row["stage_open"] = opened      # stored as the services store it
                    yield row
        _, made = copy_in(approvals(), ClearanceApproval, user=admin, reason="benchmark", check_keys=False)
    return made
