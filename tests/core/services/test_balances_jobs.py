"""Balance imports as jobs: one apply at a time, claims (who took an import up, and when), the
sweep that ends an import whose worker died, timed out or never started, tasks delivered twice,
and a cache that is down. The races run real threads against PostgreSQL; the worker killed
mid-apply is a real `manage.py qcluster` killed with SIGKILL."""
from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from core import locks
from core.models import BalanceImport, FinanceRecord, Hold
from core.selectors.finance import balance_import_progress
from core.services import balances as balances_service
from core.services.balances import (APPLY_LOCK, balances_import_apply, balances_import_apply_async,
                                    balances_import_preview, balances_import_preview_async)
from core.services.jobs import JOB_LOCK, job_lock, jobs_schedule_ensure, jobs_sweep
from core.tasks import balances_import_apply_task, balances_import_preview_task
from tests.conftest import CACHE_DOWN, LockHolder, as_if_claimed
from tests.core.services.test_balances import _xlsx

B = BalanceImport.Status
ROOT = Path(__file__).resolve().parents[3]
STOPPED = "the worker stopped; nothing was changed — confirm again"
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="threads and processes need PostgreSQL (the SQLite test database is in "
                                            "one process's memory)")


pytestmark = pytest.mark.usefixtures("own_lock_dir")


def previewed(finance_user, *balances, first=1) -> BalanceImport:
    """A previewed import of these balances for students `first`, `first`+1, …"""
    rows = [["Reg No", "Balance"]] + [[f"SCE/CS/{i:04d}/2022", b] for i, b in enumerate(balances, start=first)]
    return balances_import_preview(file=_xlsx(rows), acting_user=finance_user)


def balances_now(students):
    return [FinanceRecord.objects.get(student=s).tuition_balance for s in students]


def in_thread(func, *args, **kwargs) -> threading.Thread:
    def run():
        try:
            func(*args, **kwargs)
        finally:
            connection.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# --- claims and the sweep (both databases) -----------------------------------------------------

@pytest.mark.django_db
def test_an_apply_records_who_claimed_it_and_when(three, finance_user):
    bi = previewed(finance_user, 700)
    before = timezone.now()
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert bi.status == B.APPLIED
    assert bi.claimed_by == f"{socket.gethostname()}:{os.getpid()}"
    assert before <= bi.claimed_at <= timezone.now()
    assert not locks.is_held(JOB_LOCK, bi.pk) and not locks.is_held(APPLY_LOCK)     # both let go


@pytest.mark.django_db
def test_an_apply_whose_worker_died_ends_failed_and_can_be_confirmed_again(three, finance_user):
    bi = previewed(finance_user, 700, 0)
    as_if_claimed(bi, B.APPLYING)
    swept = jobs_sweep()
    bi.refresh_from_db()
    assert [s.pk for s in swept] == [bi.pk]
    assert (bi.status, bi.interrupted) == (B.FAILED, True)
    assert STOPPED in bi.failure_reason and f"Import #{bi.pk}" in bi.failure_reason
    assert bi.history.first().history_change_reason == "system: Balance import failed: its worker stopped"
    assert balances_now(three) == [10, 10, 10]
    assert jobs_sweep() == []                                         # once is enough
    balances_import_apply(balance_import=bi, acting_user=finance_user)   # confirm again
    bi.refresh_from_db()
    assert (bi.status, bi.interrupted, bi.failure_reason) == (B.APPLIED, False, "")
    assert balances_now(three) == [700, 0, 10]
    assert Hold.objects.get(student=three[0]).amount == 700


@pytest.mark.django_db
def test_an_import_whose_worker_died_can_be_cancelled_instead(three, finance_user):
    from core.services.balances import balances_import_cancel
    bi = previewed(finance_user, 700)
    as_if_claimed(bi, B.APPLYING)
    with pytest.raises(ValidationError, match="only a previewed import can be cancelled"):
        balances_import_cancel(balance_import=bi, acting_user=finance_user)     # still applying, for all we know
    jobs_sweep()
    balances_import_cancel(balance_import=bi, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=bi.pk).status == B.CANCELLED
    with pytest.raises(ValidationError, match="not previewed"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)


@pytest.mark.django_db
def test_a_claim_whose_worker_is_alive_is_left_alone(three, finance_user):
    bi = previewed(finance_user, 700)
    with job_lock(bi.pk):
        as_if_claimed(bi, B.APPLYING)
        assert jobs_sweep() == []
    assert BalanceImport.objects.get(pk=bi.pk).status == B.APPLYING


@pytest.mark.django_db
def test_a_claim_older_than_the_task_timeout_expires_even_if_its_lock_looks_held(three, finance_user, settings):
    bi = previewed(finance_user, 700)
    settings.JOB_CLAIM_MAX_AGE = 60
    with job_lock(bi.pk):
        as_if_claimed(bi, B.APPLYING, at=timezone.now() - datetime.timedelta(seconds=30))
        assert jobs_sweep() == []
        as_if_claimed(bi, B.APPLYING, at=timezone.now() - datetime.timedelta(seconds=61))
        assert [s.pk for s in jobs_sweep()] == [bi.pk]
    bi.refresh_from_db()
    assert bi.status == B.FAILED and bi.interrupted and "has not finished after 1 minutes" in bi.failure_reason


@pytest.mark.django_db
def test_a_preview_whose_worker_died_ends_failed_upload_again(db, finance_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        bi = balances_import_preview_async(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 9]]),
                                           acting_user=finance_user)
    as_if_claimed(bi, B.UPLOADED)
    jobs_sweep()
    bi.refresh_from_db()
    assert (bi.status, bi.interrupted) == (B.FAILED, False)
    assert "the worker stopped while reading the file; upload it again" in bi.failure_reason
    with pytest.raises(ValidationError, match="not previewed"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    # the task delivered again after its worker died does nothing
    assert "nothing to preview" in balances_import_preview_task(bi.pk, finance_user.pk)
    assert BalanceImport.objects.get(pk=bi.pk).failure_reason == bi.failure_reason


@pytest.mark.django_db
def test_a_job_nobody_took_up_fails_once_the_broker_would_have_delivered_it_again(three, finance_user, settings,
                                                                                 django_capture_on_commit_callbacks):
    settings.JOB_START_MAX_AGE = 300
    waiting, lost, taken = (previewed(finance_user, 700) for _ in range(3))
    for bi in (waiting, lost, taken):
        with django_capture_on_commit_callbacks(execute=False):
            balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    old = timezone.now() - datetime.timedelta(seconds=301)
    BalanceImport.objects.filter(pk__in=[lost.pk, taken.pk]).update(updated_at=old)
    with job_lock(taken.pk):                      # a worker waiting for its turn to apply it
        assert [s.pk for s in jobs_sweep()] == [lost.pk]
    lost.refresh_from_db()
    assert (lost.status, lost.interrupted) == (B.FAILED, True)
    assert "no worker started applying it within 5 minutes; nothing was changed — confirm again" in lost.failure_reason
    assert BalanceImport.objects.get(pk=waiting.pk).status == B.QUEUED
    # when the lost task turns up after all, it does nothing; the officer's confirm again applies it
    assert "nothing to apply" in balances_import_apply_task(lost.pk, finance_user.pk, False)
    assert BalanceImport.objects.get(pk=lost.pk).status == B.FAILED
    balances_import_apply(balance_import=lost, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=lost.pk).status == B.APPLIED


@pytest.mark.django_db
def test_a_task_delivered_again_after_its_import_was_applied_does_nothing(three, finance_user,
                                                                          django_capture_on_commit_callbacks):
    bi = previewed(finance_user, 700)
    with django_capture_on_commit_callbacks(execute=True):
        balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    applied = BalanceImport.objects.get(pk=bi.pk)
    assert applied.status == B.APPLIED
    assert balances_import_apply_task(bi.pk, finance_user.pk, False) == f"import #{bi.pk} is applied; nothing to apply"
    again = BalanceImport.objects.get(pk=bi.pk)
    assert (again.status, again.failure_reason, again.updated_at) == (B.APPLIED, "", applied.updated_at)


@pytest.mark.django_db
def test_an_apply_task_delivered_again_while_its_worker_died_ends_the_import_and_does_nothing(three, finance_user):
    bi = previewed(finance_user, 700)
    as_if_claimed(bi, B.APPLYING)
    assert balances_import_apply_task(bi.pk, finance_user.pk, False) == f"import #{bi.pk} is failed; nothing to apply"
    bi.refresh_from_db()
    assert bi.status == B.FAILED and STOPPED in bi.failure_reason
    assert balances_now(three) == [10, 10, 10]


@pytest.mark.django_db
def test_a_preview_task_whose_file_is_missing_ends_failed_with_the_reason(db, finance_user,
                                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        bi = balances_import_preview_async(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 9]]),
                                           acting_user=finance_user)
    bi.file.storage.delete(bi.file.name)            # a worker on another host, without shared storage
    with pytest.raises(FileNotFoundError):          # raised again: "Failed tasks" in /admin/ shows it too
        balances_import_preview_task(bi.pk, finance_user.pk)
    bi.refresh_from_db()
    assert bi.status == B.FAILED and bi.progress == 0
    assert "the file is not in this worker's storage" in bi.failure_reason and "upload it again" in bi.failure_reason
    assert not locks.is_held(JOB_LOCK, bi.pk)


@pytest.mark.django_db
def test_a_preview_task_that_hits_anything_ends_failed_with_the_reason(db, finance_user, monkeypatch,
                                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        bi = balances_import_preview_async(file=_xlsx([["Reg No", "Balance"], ["SCE/CS/0001/2022", 9]]),
                                           acting_user=finance_user)

    def broken(*args, **kwargs):
        raise MemoryError("out of memory")
    monkeypatch.setattr(balances_service, "_compare", broken)
    with pytest.raises(MemoryError):
        balances_import_preview_task(bi.pk, finance_user.pk)
    bi.refresh_from_db()
    assert bi.status == B.FAILED
    assert bi.failure_reason == f"Import #{bi.pk}: the preview stopped with MemoryError: out of memory; upload the file again."


@pytest.mark.django_db
def test_an_apply_task_whose_import_is_gone_fails_with_the_reason(db):
    with pytest.raises(LookupError, match="Balance import #999 does not exist"):
        balances_import_apply_task(999, None, False)
    with pytest.raises(LookupError, match="Balance import #999 does not exist"):
        balances_import_preview_task(999, None)


@pytest.mark.django_db
def test_an_apply_stopped_by_the_task_timeout_ends_failed_and_can_be_confirmed_again(three, finance_user,
                                                                                    monkeypatch):
    from django_q.exceptions import TimeoutException
    bi = previewed(finance_user, 700)
    follow = balances_service.finance_clearance_follow

    def out_of_time(**kwargs):
        raise TimeoutException("Task exceeded maximum timeout value (600 seconds)")
    monkeypatch.setattr(balances_service, "finance_clearance_follow", out_of_time)
    with pytest.raises(TimeoutException):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert (bi.status, bi.interrupted) == (B.FAILED, True)
    assert "the worker stopped (Task exceeded maximum timeout value (600 seconds)); nothing was changed — confirm " \
           "again" in bi.failure_reason
    assert balances_now(three) == [10, 10, 10] and not locks.is_held(APPLY_LOCK)
    monkeypatch.setattr(balances_service, "finance_clearance_follow", follow)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=bi.pk).status == B.APPLIED and balances_now(three)[0] == 700


@pytest.mark.django_db
def test_a_claimer_that_comes_back_after_the_sweep_ended_its_claim_writes_nothing(three, finance_user, settings,
                                                                                  monkeypatch):
    bi = previewed(finance_user, 700)
    report = balances_service.progress_cache.report

    def stalls_then_reports(kind, pk, percent):
        settings.JOB_CLAIM_MAX_AGE = -1           # it stalled past the task timeout: the sweep ends its claim
        jobs_sweep()
        settings.JOB_CLAIM_MAX_AGE = 660
        return report(kind, pk, percent)
    monkeypatch.setattr(balances_service.progress_cache, "report", stalls_then_reports)
    with pytest.raises(ValidationError, match="was ended while this worker was away"):
        balances_import_apply(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert bi.status == B.FAILED and "has not finished after" in bi.failure_reason       # the sweep's word stands
    assert balances_now(three) == [10, 10, 10]


@pytest.mark.django_db
def test_a_task_queue_that_cannot_be_reached_ends_the_import_failed(three, finance_user, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
    monkeypatch.setattr("django_q.tasks.async_task", unreachable)
    bi = previewed(finance_user, 700)
    with django_capture_on_commit_callbacks(execute=True):
        balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert (bi.status, bi.interrupted) == (B.FAILED, True)
    assert "the task queue could not be reached (ConnectionError: Error 111" in bi.failure_reason
    assert "confirm again" in bi.failure_reason


@pytest.mark.django_db
def test_a_queued_apply_stopped_while_waiting_its_turn_ends_failed_and_can_be_confirmed_again(
        three, finance_user, monkeypatch):
    from django_q.exceptions import TimeoutException
    bi = previewed(finance_user, 700)
    monkeypatch.setattr(balances_service.jobs, "enqueue", lambda *a, **k: None)
    balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    held = balances_service.locks.held

    def times_out(kind, number=0, *, wait=None):
        if kind == APPLY_LOCK:
            raise TimeoutException("Task exceeded maximum timeout value (600 seconds)")
        return held(kind, number, wait=wait)
    monkeypatch.setattr(balances_service.locks, "held", times_out)
    with pytest.raises(TimeoutException):
        balances_import_apply_task(bi.pk, finance_user.pk, False)
    bi.refresh_from_db()
    assert (bi.status, bi.interrupted) == (B.FAILED, True)
    assert "the worker stopped before applying it (TimeoutException" in bi.failure_reason
    monkeypatch.setattr(balances_service.locks, "held", held)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=bi.pk).status == B.APPLIED


@pytest.mark.django_db
def test_the_sweep_is_a_schedule_every_minute(db):
    from django_q.models import Schedule
    schedule = Schedule.objects.get(name="Sweep stopped jobs")   # made by migrate
    jobs_schedule_ensure()                                     # again changes nothing
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == \
        ("core.tasks.jobs_sweep_task", Schedule.MINUTES, 1, -1)
    assert Schedule.objects.filter(func="core.tasks.jobs_sweep_task").count() == 1


# --- one apply at a time (both databases: the apply lock held by another thread) -------------------

@pytest.mark.django_db
def test_a_second_confirm_while_another_import_applies_is_refused_and_stays_confirmable(three, finance_user):
    first, second = previewed(finance_user, 700), previewed(finance_user, 800)
    with LockHolder((APPLY_LOCK, 0), (JOB_LOCK, first.pk)):         # first is being applied elsewhere
        as_if_claimed(first, B.APPLYING)
        start = time.monotonic()
        with pytest.raises(ValidationError) as refused:
            balances_import_apply(balance_import=second, acting_user=finance_user, wait=0.3)
        assert time.monotonic() - start >= 0.25                 # it waited its bounded turn first
        assert refused.value.messages == [f"Import #{first.pk} is being applied; confirm this one when it has "
                                          "finished."]
        second.refresh_from_db()
        assert (second.status, second.claimed_by) == (B.PREVIEWED, "")
        assert balances_now(three)[0] == 10
    balances_import_apply(balance_import=second, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=second.pk).status == B.APPLIED and balances_now(three)[0] == 800


@pytest.mark.django_db
def test_the_same_import_confirmed_in_two_places_is_applied_by_one(three, finance_user):
    bi = previewed(finance_user, 700)
    with LockHolder((JOB_LOCK, bi.pk)):                             # another process is confirming it
        with pytest.raises(ValidationError, match=f"Import #{bi.pk} is being applied"):
            balances_import_apply(balance_import=bi, acting_user=finance_user)
    assert BalanceImport.objects.get(pk=bi.pk).status == B.PREVIEWED


# --- the cache is down ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_apply_with_the_cache_down_applies_and_has_no_figure(three, finance_user, settings, monkeypatch):
    settings.CACHES = CACHE_DOWN
    bi = previewed(finance_user, 700)
    seen = []
    follow = balances_service.finance_clearance_follow

    def watching(**kwargs):
        seen.append(balance_import_progress(BalanceImport.objects.get(pk=bi.pk)))
        return follow(**kwargs)
    monkeypatch.setattr(balances_service, "finance_clearance_follow", watching)
    balances_import_apply(balance_import=bi, acting_user=finance_user)
    bi.refresh_from_db()
    assert seen == [None]                                      # applying, no figure to give
    assert bi.status == B.APPLIED and balances_now(three)[0] == 700
    assert balance_import_progress(bi) == 100


# --- races: real threads and processes against PostgreSQL --------------------------------------------

@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_applies_at_the_same_instant_never_overlap(three, finance_user, monkeypatch):
    # different students: neither plan goes stale when the other is applied first
    imports = [previewed(finance_user, 700), previewed(finance_user, 800, first=2)]
    spans, errors, go = {}, [], threading.Barrier(2)
    real_apply = balances_service._apply

    def timed_apply(bi, **kwargs):
        start = time.monotonic()
        time.sleep(0.5)                                        # long enough to overlap without the lock
        real_apply(bi, **kwargs)
        spans[bi.pk] = (start, time.monotonic())
    monkeypatch.setattr(balances_service, "_apply", timed_apply)

    def confirm(bi):
        go.wait()
        try:
            balances_import_apply(balance_import=BalanceImport.objects.get(pk=bi.pk), acting_user=finance_user,
                                  wait=10)
        except Exception as exc:
            errors.append(exc)
    threads = [in_thread(confirm, bi) for bi in imports]
    for t in threads:
        t.join(30)
    assert errors == []
    (a0, a1), (b0, b1) = sorted(spans.values())
    assert a1 <= b0, f"the applies overlapped: {spans}"
    assert [BalanceImport.objects.get(pk=bi.pk).status for bi in imports] == [B.APPLIED, B.APPLIED]
    assert balances_now(three) == [700, 800, 10]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_queued_apply_waits_its_turn_then_runs(three, finance_user, monkeypatch):
    first, queued = previewed(finance_user, 700), previewed(finance_user, 800, first=2)
    monkeypatch.setattr(balances_service.jobs, "enqueue", lambda *a, **k: None)   # the worker is started below
    balances_import_apply_async(balance_import=queued, acting_user=finance_user)
    started, release, spans = threading.Event(), threading.Event(), {}
    real_apply = balances_service._apply

    def slow_apply(bi, **kwargs):
        start = time.monotonic()
        if bi.pk == first.pk:
            started.set()
            release.wait(10)
        real_apply(bi, **kwargs)
        spans[bi.pk] = (start, time.monotonic())
    monkeypatch.setattr(balances_service, "_apply", slow_apply)
    web = in_thread(balances_import_apply, balance_import=first, acting_user=finance_user)
    assert started.wait(10)
    worker = in_thread(balances_import_apply_task, queued.pk, finance_user.pk, False)
    time.sleep(0.5)
    assert BalanceImport.objects.get(pk=queued.pk).status == B.QUEUED     # waiting, not failed
    assert jobs_sweep() == []                                    # and not taken for dead
    release.set()
    web.join(15)
    worker.join(15)
    assert [BalanceImport.objects.get(pk=bi.pk).status for bi in (first, queued)] == [B.APPLIED, B.APPLIED]
    assert spans[first.pk][1] <= spans[queued.pk][0]
    assert balances_now(three) == [700, 800, 10]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_apply_changes_nothing_and_the_import_can_be_confirmed_again(three, finance_user,
                                                                                         tmp_path, monkeypatch):
    from django_q.conf import Conf
    from django_q.models import OrmQ, Task

    bi = previewed(finance_user, 700, 0, 5)
    history_before = FinanceRecord.history.count()
    marker = tmp_path / "paused"
    d = connection.settings_dict
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.qcluster_settings", PAUSE_MARKER=str(marker),
               TEST_DATABASE_URL=f"postgres://{d['USER']}@{d['HOST']}:{d['PORT']}/{d['NAME']}")
    log = open(tmp_path / "qcluster.log", "w")
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        monkeypatch.setattr(Conf, "SYNC", False)                  # this process queues; the cluster works
        balances_import_apply_async(balance_import=bi, acting_user=finance_user)
        assert OrmQ.objects.count() == 1
        deadline = time.monotonic() + 30
        while not marker.exists():                                 # records written, transaction open
            assert time.monotonic() < deadline and cluster.poll() is None, (tmp_path / "qcluster.log").read_text()
            time.sleep(0.05)
        bi.refresh_from_db()
        assert bi.status == B.APPLYING
        host, pid = bi.claimed_by.rsplit(":", 1)
        assert host == socket.gethostname() and int(pid) != cluster.pid
        os.kill(int(pid), signal.SIGKILL)                          # the worker, mid-apply

        deadline = time.monotonic() + 10
        while jobs_sweep(only=[bi.pk]) == []:
            assert time.monotonic() < deadline, "the sweep never ended the import"
            time.sleep(0.1)
        bi.refresh_from_db()
        assert (bi.status, bi.interrupted) == (B.FAILED, True) and STOPPED in bi.failure_reason
        assert balances_now(three) == [10, 10, 10]                 # rolled back with the connection
        assert FinanceRecord.history.count() == history_before and not Hold.objects.exists()

        # the broker delivers the task again (nobody acknowledged it): it finds the import ended
        deadline = time.monotonic() + 20
        while not Task.objects.filter(name=f"balances-apply-{bi.pk}").exists():
            assert time.monotonic() < deadline, (tmp_path / "qcluster.log").read_text()
            time.sleep(0.1)
        task = Task.objects.get(name=f"balances-apply-{bi.pk}")
        assert task.success and task.result == f"import #{bi.pk} is failed; nothing to apply"
        assert BalanceImport.objects.get(pk=bi.pk).failure_reason == bi.failure_reason
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(10)
        log.close()
    balances_import_apply(balance_import=bi, acting_user=finance_user)       # the officer confirms again
    assert BalanceImport.objects.get(pk=bi.pk).status == B.APPLIED
    assert balances_now(three) == [700, 0, 5]


# --- who the worker acts as: the officer who queued the job, as they are now ---------------------

def _gone(user, how):
    if how == "deleted":
        user.delete()
    elif how == "lost the finance role":
        user.groups.clear()
    else:
        user.is_active = False
        user.save(update_fields=["is_active"])


GONE = {"deleted": "no longer exists", "lost the finance role": "no longer has the finance role",
        "deactivated": "is no longer active"}


@pytest.mark.django_db
@pytest.mark.parametrize("how", sorted(GONE))
def test_an_apply_queued_by_an_officer_who_has_gone_since_ends_failed_and_changes_nothing(
        three, finance_user, how, django_capture_on_commit_callbacks):
    bi = previewed(finance_user, 700)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        balances_import_apply_async(balance_import=bi, acting_user=finance_user)
    _gone(finance_user, how)
    for run_task in queued:                      # the worker takes it up now (django-q2 sync in tests)
        run_task()
    bi.refresh_from_db()
    assert bi.status == B.FAILED and not bi.interrupted
    assert bi.failure_reason == (f"The officer who queued import #{bi.pk} (finance@clearance.test) {GONE[how]}; "
                                 "nothing was changed.")
    assert balances_now(three) == [10, 10, 10] and not Hold.objects.exists()
    assert bi.history.first().history_user is None


@pytest.mark.django_db
def test_a_preview_queued_by_an_officer_who_lost_the_role_ends_failed(three, finance_user,
                                                                      django_capture_on_commit_callbacks):
    rows = [["Reg No", "Balance"], ["SCE/CS/0001/2022", 700]]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        bi = balances_import_preview_async(file=_xlsx(rows), acting_user=finance_user)
    _gone(finance_user, "lost the finance role")
    for run_task in queued:
        run_task()
    bi.refresh_from_db()
    assert bi.status == B.FAILED and bi.updated_count == 0
    assert bi.failure_reason == (f"The officer who queued import #{bi.pk} (finance@clearance.test) no longer has the "
                                 "finance role; nothing was changed.")


@pytest.mark.django_db
def test_a_task_without_an_officer_runs_only_as_the_system_when_queued_as_the_system(three, finance_user):
    bi = previewed(finance_user, 700)
    BalanceImport.objects.filter(pk=bi.pk).update(status=B.QUEUED)
    assert balances_import_apply_task(bi.pk, None, False) == (
        f"import #{bi.pk} not applied: Import #{bi.pk} was queued without an officer; nothing was changed.")
    assert BalanceImport.objects.get(pk=bi.pk).status == B.FAILED and balances_now(three) == [10, 10, 10]
    again = previewed(finance_user, 700)
    BalanceImport.objects.filter(pk=again.pk).update(status=B.QUEUED)
    balances_import_apply_task(again.pk, None, False, True)
    again.refresh_from_db()
    assert again.status == B.APPLIED and balances_now(three) == [700, 10, 10]
    assert again.history.first().history_change_reason == "system: Balance import applied"


@pytest.mark.django_db
def test_a_missing_officer_is_not_the_system(three, finance_user):
    rows = [["Reg No", "Balance"], ["SCE/CS/0001/2022", 700]]
    with pytest.raises(ValidationError, match="needs the finance officer who makes it"):
        balances_import_preview(file=_xlsx(rows), acting_user=None)
    assert not BalanceImport.objects.exists()
    bi = previewed(finance_user, 700)
    for service in (balances_import_apply, balances_import_apply_async, balances_service.balances_import_cancel):
        with pytest.raises(ValidationError, match="needs the finance officer who makes it"):
            service(balance_import=bi, acting_user=None)
    assert BalanceImport.objects.get(pk=bi.pk).status == B.PREVIEWED and balances_now(three) == [10, 10, 10]
