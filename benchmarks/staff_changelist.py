"""Budget (DESIGN.md "Budgets", issue 14 item 7): the staff queue page runs ≤ 15 queries whatever
the page size; at 1,000,000 approvals its median server time is ≤ 100 ms and its HTML ≤ 150 KB
(PostgreSQL); the median at 1,000,000 is ≤ 1.5× the median at 10,000 on both databases, for every
case below; a search ≤ 300 ms at 1,000,000 on PostgreSQL.

    .venv/bin/python benchmarks/staff_changelist.py [--small 10000] [--large 1000000]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/staff_changelist.py
    BENCH_DATABASE_URL=postgres://… .venv/bin/python benchmarks/staff_changelist.py --both   # SQLite, then PostgreSQL

Graduation season, the hard case: every student has an open request with an item of each of the
seven offices (about half of the stage-1 items pending, the registry's all pending), so 1,000,000
approvals are 142,857 students (benchmarks/_setup.make_season, COPY on PostgreSQL). The library
clerk (lib@clearance.test) opens the queue as a clerk does — the default list, the pending filter,
"waiting" (pending, stage open), page 3, a search by name and one by registration number — and the
registry office's clerk (reg@clearance.test, stage 2: "waiting" has to look at earlier stages)
opens "waiting". Each page 9 times, the cases taken in turn so that the machine's load falls on
all alike; the server time is the Django test client's request (middleware, view, template; no
network), the median reported with the process's CPU time beside it (the machine is shared: CPU
time moves less with the others' load than the wall clock does).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import configure, make_season, season_student  # noqa: E402

OFFICES = 7
QUEUE = "/staff/core/clearanceapproval/"
PROBE = 700          # the student searched for: among the first 10,000 approvals' students
REPEAT = 9


def cases():
    probe = season_student(PROBE)
    name = f"{probe['first_name']}+{probe['last_name']}"
    number = probe["registration_number"]
    return {
        "default queue": ("lib", QUEUE),
        "pending": ("lib", QUEUE + "?status__exact=pending"),
        "waiting": ("lib", QUEUE + "?queue=waiting"),
        "waiting, REG clerk": ("reg", QUEUE + "?queue=waiting"),
        "pending, page 3": ("lib", QUEUE + "?status__exact=pending&p=3"),
        "search by name": ("lib", QUEUE + f"?q={name}"),
        "search by reg no": ("lib", QUEUE + f"?q={number}"),
    }


def grow_to(total: int) -> float:
    """Seed up to `total` approvals (students × offices); returns the seconds it took."""
    from core.models import Student
    started = time.perf_counter()
    have = Student.objects.filter(admission_year__gte=2030).count()
    make_season(max(-(-total // OFFICES) - have, 0))
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def measure(clients) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    plan = cases()
    for who, url in plan.values():
        clients[who].get(url, secure=True)          # warm
    walls = {name: [] for name in plan}
    cpus = {name: [] for name in plan}
    out = {}
    for _ in range(REPEAT):
        for name, (who, url) in plan.items():
            with CaptureQueriesContext(connection) as ctx:
                cpu, start = time.process_time(), time.perf_counter()
                response = clients[who].get(url, secure=True)
                walls[name].append(time.perf_counter() - start)
                cpus[name].append(time.process_time() - cpu)
            assert response.status_code == 200, (url, response.status_code)
            out[name] = {"queries": len(ctx.captured_queries), "kb": len(response.content) / 1024,
                         "gzip_kb": len(gzip.compress(response.content)) / 1024,
                         "rows": response.content.count(b'name="_selected_action"')}
    for name in plan:
        out[name].update(ms=statistics.median(walls[name]) * 1000, cpu_ms=statistics.median(cpus[name]) * 1000)
    return out


def run(small: int, large: int) -> dict:
    configure("staff_changelist")
    from django.conf import settings
    settings.ALLOWED_HOSTS = ["testserver"]
    from django.db import connection
    from django.test import Client

    from core.demo import seed_demo
    from core.models import ClearanceApproval, User
    seed_demo(students=1, password="benchmark-pass")
    clients = {}
    for who in ("lib", "reg"):
        clients[who] = Client()
        clients[who].force_login(User.objects.get(email=f"{who}@clearance.test"))
    result = {"vendor": connection.vendor, "sizes": {}}
    for size in (small, large):
        seconds = grow_to(size)
        count = ClearanceApproval.objects.count()
        load = os.getloadavg()[0]
        print(f"[{connection.vendor}] {count:,} approvals (seeded in {seconds:.0f} s), load {load:.1f}", flush=True)
        result["sizes"][str(size)] = {"count": count, "seed_s": seconds, "load": load, "cases": measure(clients)}
    return result


def report(result: dict, small: int, large: int) -> bool:
    vendor = result["vendor"]
    s, l = result["sizes"][str(small)], result["sizes"][str(large)]
    print(f"\n{vendor}: {s['count']:,} vs {l['count']:,} approvals (load {s['load']:.1f} / {l['load']:.1f}; "
          f"seeding to {large:,} took {l['seed_s']:.0f} s)")
    # rows on each page: a case whose small page holds fewer rows than its large one (the registry's
    # "waiting" at 10,000 approvals lists a handful) compares unlike pages, and the ratio says so
    print(f"{'case':<20} {'10k ms':>8} {'1M ms':>8} {'ratio':>6} {'1M cpu':>7} {'queries':>8} {'rows':>9} "
          f"{'KB':>6} {'gzip KB':>8}  budget")
    ok = True
    for name in s["cases"]:
        a, b = s["cases"][name], l["cases"][name]
        ratio = b["ms"] / a["ms"]
        limit = 300 if name.startswith("search") else 100
        checks = [ratio <= 1.5, b["queries"] <= 15, a["queries"] == b["queries"]]
        if vendor == "postgresql":
            checks += [b["ms"] <= limit, b["kb"] <= 150]
        within = all(checks)
        ok &= within
        print(f"{name:<20} {a['ms']:8.1f} {b['ms']:8.1f} {ratio:5.2f}x {b['cpu_ms']:7.1f} "
              f"{a['queries']:>3} / {b['queries']:<3} {a['rows']:>4}/{b['rows']:<4} {b['kb']:6.0f} {b['gzip_kb']:8.1f}  "
              f"{'ok' if within else 'OVER'}")
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--both", action="store_true", help="SQLite, then PostgreSQL (BENCH_DATABASE_URL)")
    parser.add_argument("--json", help=argparse.SUPPRESS)       # a child run of --both writes its result here
    args = parser.parse_args()
    if args.both:
        if not os.environ.get("BENCH_DATABASE_URL"):
            parser.error("--both needs BENCH_DATABASE_URL (the PostgreSQL database)")
        results = []
        for env in ({k: v for k, v in os.environ.items() if k != "BENCH_DATABASE_URL"}, dict(os.environ)):
            out = Path(os.environ.get("BENCH_OUT") or Path(__file__).resolve().parent / "out")
            out.mkdir(parents=True, exist_ok=True)
            target = out / f"staff_changelist_{'pg' if 'BENCH_DATABASE_URL' in env else 'sqlite'}.json"
            subprocess.run([sys.executable, __file__, "--small", str(args.small), "--large", str(args.large),
                            "--json", str(target)], env=env, check=True)
            results.append(json.loads(target.read_text()))
        ok = all([report(r, args.small, args.large) for r in results])
    else:
        result = run(args.small, args.large)
        if args.json:
            Path(args.json).write_text(json.dumps(result))
            return 0
        ok = report(result, args.small, args.large)
    print("\nwithin budget" if ok else "\nOVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
