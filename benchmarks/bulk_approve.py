"""Budget (DESIGN.md): bulk approve with history — 5,000 approvals ≤ 12× the time of 500 (no worse
than linear, batch overheads amortised) and about 5 s at most; queries grow with batches, not rows.

    .venv/bin/python benchmarks/bulk_approve.py            # SQLite file under benchmarks/out/
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bulk_approve.py

Each size runs 3 times on fresh pending items (median reported); history rows are counted to
show every approval got one.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import configure, make_pending_items, timed  # noqa: E402

SMALL, LARGE, REPEAT = 500, 5000, 3


def main():
    configure("bulk_approve")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.demo import seed_demo
    from core.models import ClearanceApproval, User
    from core.services.approvals import approvals_approve

    seed_demo(students=1, password="benchmark-pass")
    reviewer = User.objects.get(email="lib@clearance.test")
    pools = {size: [make_pending_items(size) for _ in range(REPEAT)] for size in (SMALL, LARGE)}
    results = {}
    for size, batches in pools.items():
        queue = list(batches)
        queries = []

        def run():
            ids = queue.pop(0)
            with CaptureQueriesContext(connection) as ctx:
                result = approvals_approve(approval_ids=ids, acting_user=reviewer)
            queries.append(len(ctx.captured_queries))
            assert result.done_count == size and not result.refused, result.refused[:3]
            return ids

        seconds, ids = timed(run, REPEAT)
        history = ClearanceApproval.history.filter(id__in=ids, history_type="~", status="approved").count()
        results[size] = (seconds, max(queries), history)
        print(f"approve {size:>5}: median {seconds:.3f}s  ({size / seconds:,.0f} rows/s)  "
              f"queries {max(queries)}  history rows {history}/{size}")
    ratio = results[LARGE][0] / results[SMALL][0]
    print(f"ratio {LARGE}/{SMALL}: {ratio:.2f}x  (budget ≤ 12x; {LARGE} in {results[LARGE][0]:.2f}s, budget ~5s) "
          f"on {connection.vendor}")
    ok = ratio <= 12 and results[LARGE][0] <= 5.5 and all(r[2] == size for size, r in results.items())
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
