"""Work a process takes up and may not finish: previewing or applying a balance import, in a
worker or on confirm. Who took it up and when (the claim), whether they are still there, and the
sweep that ends a job whose worker died, ran out of time or never started.

A claim is `claimed_by` (host:pid) and `claimed_at` on the job's row, written while the claimer
holds the job's lock (core/locks.py: kind "balance-import-job", number = the import's id), taken
before the claim is committed and let go after the job's last write. The lock is the claim's
renewal: it lasts exactly as long as the claimer's database connection (PostgreSQL) or process
(SQLite), so a claim whose lock is free belongs to a worker that is gone. As a last resort a
claim older than JOB_CLAIM_MAX_AGE (the task timeout and a minute) expires even while its lock
looks held — never while its transaction still holds the row, and a claimer that wakes up after
its claim was ended finds it ended (`claim_hold`) and writes nothing. A job nobody took up
(queued or uploaded, lock free) fails after JOB_START_MAX_AGE: long enough for the ORM broker to
redeliver a task whose worker died before starting it.

The sweep runs every minute (a django-q schedule, `jobs_schedule_ensure`), when the import pages
or /health/ are read, and first thing in every import task (so a task the broker redelivers
after its worker died finds the job already failed and does nothing)."""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import socket
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from .. import locks
from ..history import as_system, save_tracked
from ..models import BalanceImport

log = logging.getLogger(__name__)
B = BalanceImport.Status
JOB_LOCK = "balance-import-job"

SWEEP_SCHEDULE = "Sweep stopped jobs"


def worker_stopped_apply(pk) -> str:
    return f"Import #{pk}: the worker stopped; nothing was changed — confirm again."


def worker_stopped_preview(pk) -> str:
    return f"Import #{pk}: the worker stopped while reading the file; upload it again."


class ClaimLost(ValidationError):
    """The sweep ended this job while its claimer was away; the claimer must write nothing."""


@dataclass(frozen=True)
class Swept:
    pk: int
    reason: str

    def as_dict(self) -> dict:
        return {"import": self.pk, "reason": self.reason}


def claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_max_age() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.JOB_CLAIM_MAX_AGE)


def start_max_age() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.JOB_START_MAX_AGE)


def job_lock(pk: int):
    """Hold import `pk`'s job lock for the block (LockBusy: another process has it)."""
    return locks.held(JOB_LOCK, pk, wait=0)


def job_is_alive(pk: int) -> bool:
    return locks.is_held(JOB_LOCK, pk)


def claim(bi: BalanceImport, *, status: str, to_status: str, **where_and_set) -> datetime.datetime | None:
    """Claim `bi` (status `status` → `to_status`) for this process, while holding its job lock.
    `where_and_set`: `where` a dict of further conditions, the rest fields to set. Returns the
    claim's time, None when the row is no longer as expected (nothing written)."""
    where = where_and_set.pop("where", {})
    now = timezone.now()
    me = claimant()
    if not BalanceImport.objects.filter(pk=bi.pk, status=status, **where).update(
            status=to_status, claimed_by=me, claimed_at=now, updated_at=now, **where_and_set):
        return None
    bi.status, bi.claimed_by, bi.claimed_at = to_status, me, now
    for name, value in where_and_set.items():
        setattr(bi, name, value)
    return now


def claim_hold(bi: BalanceImport, *, status: str) -> None:
    """Inside the job's transaction: lock its row as this process claimed it. Raises ClaimLost when
    the sweep ended the claim meanwhile. On PostgreSQL the row stays locked to the end of the
    transaction, so the sweep never ends a claim whose transaction is still at work."""
    if not BalanceImport.objects.select_for_update().filter(
            pk=bi.pk, status=status, claimed_by=bi.claimed_by, claimed_at=bi.claimed_at).exists():
        raise ClaimLost(f"Import #{bi.pk} was ended while this worker was away; nothing was written.",
                        code="claim_lost")


def claim_end(bi: BalanceImport, *, status: str, reason: str, interrupted: bool, acting_user, history: str) -> None:
    """Mark the import this process claimed failed — unless the sweep ended it meanwhile. Never
    raises: it runs while another exception is on its way out (and if the database is gone, the
    claim went with the connection and the sweep ends the import)."""
    try:
        with transaction.atomic():
            if not BalanceImport.objects.select_for_update().filter(
                    pk=bi.pk, status=status, claimed_by=bi.claimed_by, claimed_at=bi.claimed_at).exists():
                return
            bi.status = B.FAILED
            bi.failure_reason = reason[:2000]
            bi.interrupted = interrupted
            bi.progress = 0
            save_tracked(bi, user=acting_user, reason=history,
                         update_fields=["status", "failure_reason", "interrupted", "progress", "updated_at"])
    except Exception:
        log.exception("could not mark import #%s failed (%s)", bi.pk, reason)


def not_started(bi: BalanceImport, *, reason: str, interrupted: bool, status: str = B.QUEUED) -> None:
    """A queued job (`status` queued, or uploaded for a preview) stopped before anyone claimed it:
    failed, if it is still waiting unclaimed. Never raises."""
    try:
        with transaction.atomic():
            row = BalanceImport.objects.select_for_update().defer("plan").filter(
                pk=bi.pk, status=status, **({"claimed_by": ""} if status == B.UPLOADED else {})).first()
            if row is None:
                return
            row.status, row.failure_reason, row.interrupted, row.progress = B.FAILED, reason[:2000], interrupted, 0
            save_tracked(row, user=None, reason=as_system("Balance import failed"),
                         update_fields=["status", "failure_reason", "interrupted", "progress", "updated_at"])
    except Exception:
        log.exception("could not mark import #%s failed (%s)", bi.pk, reason)


def enqueue(bi: BalanceImport, func: str, *args, name: str):
    """Queue a task for `bi`; a broker that cannot be reached ends the import failed, not waiting
    for a worker that will never come."""
    from django_q.tasks import async_task
    try:
        async_task(func, *args, task_name=name)
    except Exception as exc:
        log.exception("could not queue %s", name)
        preview = bi.status == B.UPLOADED
        reason = (f"Import #{bi.pk}: the task queue could not be reached ({type(exc).__name__}: {exc}); nothing was "
                  "changed — " + ("upload the file again." if preview else "confirm again."))
        BalanceImport.objects.filter(pk=bi.pk, status=bi.status).update(
            status=B.FAILED, failure_reason=reason[:2000], interrupted=not preview, progress=0)


# --- the sweep ----------------------------------------------------------------------------------

def _verdict(row: dict, now) -> tuple[str, bool] | None:
    """(reason, interrupted) when this job is stuck, None while it may still be under way."""
    pk, status = row["pk"], row["status"]
    alive = job_is_alive(pk)
    if status == B.APPLYING or (status == B.UPLOADED and row["claimed_by"]):
        preview = status == B.UPLOADED
        if not alive:
            return (worker_stopped_preview(pk) if preview else worker_stopped_apply(pk)), not preview
        if row["claimed_at"] and row["claimed_at"] < now - claim_max_age():
            minutes = round(claim_max_age().total_seconds() / 60)
            return (f"Import #{pk}: the worker has not finished after {minutes} minutes and is taken to have "
                    "stopped; nothing was changed — " + ("upload the file again." if preview else "confirm again.")), \
                not preview
        return None
    if alive:                                   # taken up: a worker is waiting for its turn to apply it
        return None
    if row["updated_at"] < now - start_max_age():
        minutes = round(start_max_age().total_seconds() / 60)
        if status == B.QUEUED:
            return (f"Import #{pk}: no worker started applying it within {minutes} minutes; nothing was "
                    "changed — confirm again."), True
        return f"Import #{pk}: no worker read the file within {minutes} minutes; upload it again.", False
    return None


@contextlib.contextmanager
def _brief_write_wait(seconds: float = 1.0):
    """SQLite: wait at most `seconds` for the write lock (an apply may hold it for minutes; the
    sweep tries again at its next run). PostgreSQL needs nothing: the sweep skips locked rows."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        before = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(before)}")


def _end(row: dict, reason: str, interrupted: bool) -> bool:
    """Mark one stuck job failed, if it is still as the sweep saw it and no transaction holds it."""
    qs = BalanceImport.objects.defer("plan").filter(pk=row["pk"], status=row["status"],
                                                    claimed_by=row["claimed_by"], claimed_at=row["claimed_at"])
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    with transaction.atomic():
        bi = qs.first()
        if bi is None:
            return False
        bi.status = B.FAILED
        bi.failure_reason = reason
        bi.interrupted = interrupted
        bi.progress = 0
        save_tracked(bi, user=None, reason=as_system("Balance import failed: its worker stopped"),
                     update_fields=["status", "failure_reason", "interrupted", "progress", "updated_at"])
    return True


def jobs_sweep(*, only: list[int] | None = None, now: datetime.datetime | None = None) -> list[Swept]:
    """End every stuck job (balance imports being previewed or applied whose worker died, ran out
    of time or never started) as failed with a reason the officer reads; an apply so ended can be
    confirmed again (`interrupted`). `only`: just these imports. Returns what it ended. Never
    waits for a job that is at work; on SQLite a sweep that finds the database busy leaves the
    rest to its next run."""
    now = now or timezone.now()
    rows = BalanceImport.objects.filter(status__in=[B.UPLOADED, B.QUEUED, B.APPLYING])
    if only is not None:
        rows = rows.filter(pk__in=only)
    swept = []
    for row in rows.values("pk", "status", "claimed_by", "claimed_at", "updated_at").order_by("pk"):
        verdict = _verdict(row, now)
        if verdict is None:
            continue
        try:
            with _brief_write_wait():
                ended = _end(row, *verdict)
        except OperationalError:                # SQLite: an apply holds the write lock; next run
            log.info("sweep deferred for import #%s: the database is busy", row["pk"])
            continue
        if ended:
            log.warning("%s", verdict[0])
            swept.append(Swept(row["pk"], verdict[0]))
    return swept


def jobs_sweep_quietly(**kwargs) -> list[Swept]:
    """The sweep from a page or /health/: a page is shown whatever the sweep met."""
    try:
        return jobs_sweep(**kwargs)
    except Exception:
        log.exception("the jobs sweep failed")
        return []


def jobs_schedule_ensure(**kwargs) -> None:
    """The sweep as a django-q schedule, every minute (visible in /admin/ under Schedules).
    Idempotent; run after every migrate (and flush)."""
    from django_q.models import Schedule
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return                                  # migrating part of the way: django_q's tables come later
    Schedule.objects.get_or_create(name=SWEEP_SCHEDULE, defaults=dict(
        func="core.tasks.jobs_sweep_task", schedule_type=Schedule.MINUTES, minutes=1, repeats=-1))
