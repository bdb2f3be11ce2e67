"""Budget (DESIGN.md "Budgets", issue 14 item 7): under 8 concurrent signed-in clerks (gunicorn,
4 workers, on PostgreSQL), the staff queue's pages/s, p50 and p99, beside the same load on
Django's default admin changelist of the same model (benchmarks/queue_load_urls.py).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/queue_load.py \
        [--approvals 1000000] [--clerks 8] [--seconds 30] [--workers 4] [--port 8105]

The database is seeded to `--approvals` (graduation season, benchmarks/_setup.make_season) unless
it holds them already (kept between runs: staff_changelist.py leaves 1,000,000 there; `--fresh`
starts over). gunicorn runs with DEBUG=true as `make run` sets it and OTP_REQUIRED=false: the
clerks sign in with a session made here, not through the second factor. Each clerk is a thread
with its own session (8 library clerks, lib1…lib8@bench.test, each holding the library office)
asking for the queue's pages 1 to 5 in turn for `--seconds`; then the same clerks on the baseline.
Client and server share the machine's cores, as they did when the issue measured 6.4 pages/s.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import OUT, ROOT, make_season  # noqa: E402

OFFICES = 7
SECRET = "queue-load-benchmark"
TARGETS = {
    "staff queue (this project)": "/staff/core/clearanceapproval/",
    "default Django admin changelist": "/baseline-admin/core/clearanceapproval/",
}


def prepare(approvals: int, clerks: int, fresh: bool) -> list[str]:
    """Migrate and seed the benchmark database; return one session key per clerk."""
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    os.environ.update(DJANGO_SETTINGS_MODULE="clearance_admin.settings", SECRET_KEY=SECRET, DEBUG="true",
                      OTP_REQUIRED="false", LOG_LEVEL="WARNING", MEDIA_ROOT=str(OUT / "media"))
    sys.path.insert(0, str(ROOT))
    import django
    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection

    from core import permissions
    from core.demo import seed_demo
    from core.models import ClearanceApproval, Department, Student, User
    if fresh:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    if not User.objects.filter(email="admin@clearance.test").exists():
        seed_demo(students=1, password="benchmark-pass")
    have = Student.objects.filter(admission_year__gte=2030).count()
    started = time.perf_counter()
    made = make_season(max(-(-approvals // OFFICES) - have, 0))
    if made:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded {made:,} approvals in {time.perf_counter() - started:.0f} s")
    print(f"{ClearanceApproval.objects.count():,} approvals, {Student.objects.count():,} students")
    library = Department.objects.get(code="LIB")
    keys = []
    for i in range(1, clerks + 1):
        user, _ = User.objects.get_or_create(email=f"lib{i}@bench.test", defaults={"full_name": f"Library clerk {i}"})
        permissions.reviewer_set_scope(user=user, departments=[library])
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    return keys


def serve(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.queue_load_settings", "DEBUG": "true",
           "OTP_REQUIRED": "false", "SECRET_KEY": SECRET, "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "clearance_admin.wsgi", "--chdir", str(ROOT),
                               "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                               "--timeout", "120"], env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    stop(server)
    raise SystemExit("gunicorn did not answer /health/ within 60 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def load(port: int, path: str, keys: list[str], seconds: float) -> dict:
    """Each clerk asks for pages 1–5 of `path` in turn until the time is up."""
    import requests
    latencies, errors, sizes = [], [], []
    lock = threading.Lock()
    start_at = time.perf_counter() + 1.0
    end_at = start_at + seconds

    def clerk(key, offset):
        session = requests.Session()
        session.cookies.set("sessionid", key, domain="127.0.0.1")
        n = offset
        while time.perf_counter() < start_at:
            time.sleep(0.01)
        while time.perf_counter() < end_at:
            page = n % 5 + 1
            n += 1
            url = f"http://127.0.0.1:{port}{path}" + (f"?p={page}" if page > 1 else "")
            begun = time.perf_counter()
            try:
                response = session.get(url, timeout=120, allow_redirects=False)
                ok = response.status_code == 200 and b'id="result_list"' in response.content
                size = len(response.content)
            except requests.RequestException as exc:
                ok, size = False, 0
                response = exc
            took = time.perf_counter() - begun
            with lock:
                if ok:
                    latencies.append(took)
                    sizes.append(size)
                else:
                    errors.append(getattr(response, "status_code", repr(response)))

    threads = [threading.Thread(target=clerk, args=(key, i)) for i, key in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"pages": len(latencies), "errors": errors,
            "pages_s": len(latencies) / seconds,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
            "kb": statistics.median(sizes) / 1024 if sizes else 0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--approvals", type=int, default=1_000_000)
    parser.add_argument("--clerks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8105)
    parser.add_argument("--fresh", action="store_true", help="flush the database and seed again")
    args = parser.parse_args()
    if not os.environ.get("BENCH_DATABASE_URL", "").startswith("postgres"):
        parser.error("set BENCH_DATABASE_URL to a PostgreSQL database of the benchmark's own")
    keys = prepare(args.approvals, args.clerks, args.fresh)
    server = serve(args.port, args.workers)
    results = {}
    try:
        for name, path in TARGETS.items():
            load(args.port, path, keys, 3)          # warm every worker
            results[name] = load(args.port, path, keys, args.seconds)
            load_avg = os.getloadavg()[0]
            print(f"{name}: done (load average {load_avg:.1f})", flush=True)
    finally:
        stop(server)
    print(f"\n{args.clerks} clerks, gunicorn {args.workers} workers, {args.seconds:.0f} s each, PostgreSQL")
    print(f"{'':<34} {'pages/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'KB':>6} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:<34} {r['pages_s']:8.1f} {r['p50'] * 1000:8.0f} {r['p99'] * 1000:8.0f} {r['kb']:6.0f} "
              f"{len(r['errors']):>7}")
    mine, base = results[list(TARGETS)[0]], results[list(TARGETS)[1]]
    if base["pages_s"]:
        print(f"\nthroughput {mine['pages_s'] / base['pages_s']:.1f}x the default admin's")
    return 0 if not mine["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
