"""`make run`'s supervisor (scripts/run.py): a SIGTERM or Ctrl-C to its process group stops the web
server and the task worker within 10 s and leaves no process — even children that ignore SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUBBORN = (f"{sys.executable} -c \"import signal, time, os; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"signal.signal(signal.SIGINT, signal.SIG_IGN); open(os.environ['PIDFILE_%s'], 'w').write(str(os.getpid())); "
            f"time.sleep(600)\"")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for every purpose but the table
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_group_stops_even_children_that_ignore_it(tmp_path, signum):
    env = {**os.environ, "PIDFILE_A": str(tmp_path / "a"), "PIDFILE_B": str(tmp_path / "b")}
    supervisor = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run.py"), "--command", STUBBORN % "A",
                                   "--command", STUBBORN % "B"], env=env, start_new_session=True)
    assert _wait_for(lambda: (tmp_path / "a").exists() and (tmp_path / "b").exists(), 10)
    time.sleep(0.3)
    pids = [int((tmp_path / n).read_text()) for n in "ab"]
    started = time.monotonic()
    os.killpg(supervisor.pid, signum)             # what Ctrl-C or `kill -TERM -<pgid>` does
    supervisor.wait(timeout=15)
    assert time.monotonic() - started < 10
    assert not any(_alive(pid) for pid in pids)


def test_make_runs_commands_stop_within_ten_seconds(tmp_path):
    """The real pair, qcluster and gunicorn, on a throwaway database."""
    db = tmp_path / "run.sqlite3"
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": f"sqlite:///{db}", "LOCKS_DIR": str(tmp_path / "locks"),
           "LOG_LEVEL": "WARNING", "HEALTH_TOKEN": "run-test-token"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = "8799"
    venv = Path(sys.executable).parents[1]              # the virtualenv running the tests (not resolved)
    log = (tmp_path / "run.log").open("w")
    supervisor = subprocess.Popen([sys.executable, "scripts/run.py", "--port", port, "--venv", str(venv)], cwd=ROOT,
                                  env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)

    def answers():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=1).status in (200, 503)
        except OSError as exc:
            return getattr(exc, "code", None) in (200, 503)
    try:
        assert _wait_for(answers, 40), (tmp_path / "run.log").read_text()[-2000:]

        def cluster_reported():          # /health/ sees the task worker's cluster (through the shared cache)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/health/",
                                             headers={"Authorization": "Bearer run-test-token"})
            try:
                body = urllib.request.urlopen(request, timeout=2).read()
            except OSError as exc:
                body = exc.read() if hasattr(exc, "read") else b"{}"
            return json.loads(body or b"{}").get("task_queue", {}).get("clusters", 0) >= 1
        assert _wait_for(cluster_reported, 30), (tmp_path / "run.log").read_text()[-2000:]
        group = [int(p) for p in subprocess.run(["pgrep", "-s", str(supervisor.pid)], capture_output=True,
                                                text=True).stdout.split()]
        children = subprocess.run(["pgrep", "-P", str(supervisor.pid)], capture_output=True, text=True).stdout.split()
        descendants = {int(c) for c in children}
        for child in list(descendants):
            descendants |= {int(p) for p in subprocess.run(["pgrep", "-s", str(child)], capture_output=True,
                                                           text=True).stdout.split()}
        assert len(descendants) >= 3, descendants          # qcluster's processes and gunicorn's
        started = time.monotonic()
        os.killpg(supervisor.pid, signal.SIGTERM)
        supervisor.wait(timeout=15)
        assert time.monotonic() - started < 10
        assert _wait_for(lambda: not any(_alive(p) for p in descendants | set(group)), 2)
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
