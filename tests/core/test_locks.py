"""core/locks.py: one holder at a time, across threads (each its own connection) and processes, on
SQLite and PostgreSQL; a lock whose holder is killed is free at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from core import locks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_lock_dir")]
ROOT = Path(__file__).resolve().parents[2]
APPLY = "balance-import-apply"
JOB = "balance-import-job"


def in_thread(func):
    """Run func in another thread (its own database connection) and return what it returned or raised."""
    out = {}

    def run():
        try:
            out["value"] = func()
        except BaseException as exc:                 # handed back to the test
            out["error"] = exc
        finally:
            connection.close()
    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def try_once(kind=APPLY, number=0):
    with locks.held(kind, number, wait=0):
        return "got it"


def test_one_holder_at_a_time():
    assert not locks.is_held(APPLY)
    with locks.held(APPLY):
        assert locks.is_held(APPLY)
        assert in_thread(lambda: locks.is_held(APPLY))
        with pytest.raises(locks.LockBusy):
            in_thread(try_once)
    assert not locks.is_held(APPLY)
    assert in_thread(try_once) == "got it"


def test_numbers_and_kinds_are_separate_locks():
    with locks.held(JOB, 1):
        assert in_thread(lambda: try_once(JOB, 2)) == "got it"
        assert in_thread(lambda: try_once(APPLY, 1)) == "got it"
        with pytest.raises(locks.LockBusy):
            in_thread(lambda: try_once(JOB, 1))


def test_a_waiter_gets_the_lock_when_it_is_let_go():
    taken, release = threading.Event(), threading.Event()

    def holder():
        with locks.held(APPLY):
            taken.set()
            release.wait(10)
        connection.close()
    t = threading.Thread(target=holder)
    t.start()
    assert taken.wait(10)
    with pytest.raises(locks.LockBusy):
        in_thread(lambda: try_once_waiting(0.3))
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    assert in_thread(lambda: try_once_waiting(5)) == "got it"
    assert time.monotonic() - start >= 0.25
    t.join(10)


def try_once_waiting(seconds):
    with locks.held(APPLY, wait=seconds):
        return "got it"


def test_a_killed_holder_lets_go_at_once(settings):
    """What claims rest on: kill -9 the process holding a lock and the lock is free."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="clearance_admin.settings_test", LOCKS_DIR=settings.LOCKS_DIR)
    if connection.vendor == "postgresql":
        d = connection.settings_dict
        env["TEST_DATABASE_URL"] = f"postgres://{d['USER']}@{d['HOST']}:{d['PORT']}/{d['NAME']}"
    script = ("import django, time; django.setup(); from core import locks\n"
              "with locks.held('balance-import-job', 7):\n    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert locks.is_held(JOB, 7)
        with pytest.raises(locks.LockBusy):
            try_once(JOB, 7)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while locks.is_held(JOB, 7) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not locks.is_held(JOB, 7)
        assert try_once(JOB, 7) == "got it"
    finally:
        proc.kill()
        proc.wait()
