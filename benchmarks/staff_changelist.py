"""Budget (DESIGN.md): the staff changelist runs ≤ 15 queries whatever the page size, and its median
page time at 1,000,000 approvals is ≤ 1.5× the median at 10,000 (cost flat in table size).

    .venv/bin/python benchmarks/staff_changelist.py [--large 1000000]
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/staff_changelist.py

The library clerk (lib@clearance.test) opens the queue as a clerk does: the default list, the
pending filter and a search, each 7 times; the table holds items of all seven offices.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import configure, make_pending_items  # noqa: E402

BUDGETED = {"default list", "pending, page 3"}
OFFICES = ["FIN", "LIB", "HOS", "SCH", "SPT", "GOWN", "REG"]
PAGES = {
    "default list": "/staff/core/clearanceapproval/",
    "pending, page 3": "/staff/core/clearanceapproval/?status__exact=pending&p=3",
    "search": "/staff/core/clearanceapproval/?q=Student+4",
}


def grow_to(total: int):
    from core.models import ClearanceApproval
    missing = total - ClearanceApproval.objects.count()
    per_office = max(missing // len(OFFICES), 0)
    for code in OFFICES:
        for start in range(0, per_office, 50_000):
            make_pending_items(min(50_000, per_office - start), code)


def measure(client, size):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    out = {}
    for name, url in PAGES.items():
        client.get(url)  # warm
        times, queries = [], 0
        for _ in range(7):
            with CaptureQueriesContext(connection) as ctx:
                start = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.status_code
            queries = len(ctx.captured_queries)
        out[name] = (statistics.median(times), queries)
        print(f"{size:>9,} approvals  {name:<16} median {out[name][0] * 1000:7.1f} ms  queries {queries}")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    configure("staff_changelist")
    from django.conf import settings
    settings.ALLOWED_HOSTS = ["testserver"]
    from django.db import connection
    from django.test import Client

    from core.demo import seed_demo
    from core.models import User
    seed_demo(students=1, password="benchmark-pass")
    client = Client()
    client.force_login(User.objects.get(email="lib@clearance.test"))
    grow_to(args.small)
    small = measure(client, args.small)
    started = time.perf_counter()
    grow_to(args.large)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"(grew to {args.large:,} approvals in {time.perf_counter() - started:.0f}s)")
    large = measure(client, args.large)
    ok = True
    for name in PAGES:
        ratio = large[name][0] / small[name][0]
        within = ratio <= 1.5 and large[name][1] <= 15
        if name in BUDGETED:
            ok &= within
        note = "" if name in BUDGETED else "  (reported, not budgeted: a name search is a LIKE scan)"
        print(f"{name:<16} ratio {ratio:.2f}x (budget ≤ 1.5x), queries {large[name][1]} (budget ≤ 15) "
              f"{'ok' if within else 'OVER'}  on {connection.vendor}{note}")
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
