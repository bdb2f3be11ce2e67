"""Locks the database referees: work that must not overlap never does, on SQLite and across
PostgreSQL hosts, and a lock dies with the process that holds it (so a claim made under one can be
told from a claim whose worker was killed).

A lock is a kind (one per kind of work, `KINDS`) and a number (0, or the id of the row it guards).
- PostgreSQL: a session-level advisory lock, `pg_advisory_lock(kind, number)`, on this thread's
  connection. The server frees it when the connection closes, which it notices at once when the
  process holding it is killed (SIGKILL included): no heartbeat, no timer. Session locks need a
  real session: behind PgBouncer, use session pooling for the web and worker processes.
- SQLite (one host by definition): an exclusive `flock` on a file beside the database
  (`<database>-locks/<kind>-<number>.lock`, or under LOCKS_DIR); the kernel frees it when the
  process dies. Each acquisition opens the file anew, so threads of one process exclude each other
  too. Not re-entrant: a thread must not take a lock it holds (PostgreSQL's would let it).

Waiting polls (every POLL_SECONDS) instead of blocking in the database, so a task's timeout signal
still interrupts a wait cleanly."""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection

log = logging.getLogger(__name__)

# kind → the first key of PostgreSQL's two-key advisory lock ("CL" and a number: easy to spot in pg_locks)
KINDS = {
    "balance-import-apply": 0x434C0001,     # at most one balance import applies at a time
    "balance-import-job": 0x434C0002,       # held by whoever previews or applies import <number>
    "backup": 0x434C0003,                   # one backup at a time (core/services/backups.py)
    "hold-import-apply": 0x434C0004,        # <department id>: at most one hold import applies per office
    "student-import-apply": 0x434C0005,     # at most one graduand import applies at a time
    "escalations": 0x434C0010,              # one process escalates <day> (core/services/reminders.py)
}
POLL_SECONDS = 0.1
_temporary: set[Path] = set()


class LockBusy(Exception):
    """Somebody else holds the lock (and did not let go within the wait)."""


def _keys(kind: str, number: int) -> tuple[int, int]:
    if not 0 <= number < 2 ** 31:
        raise ValueError(f"lock number {number} out of range")
    return KINDS[kind], number


def _lock_dir() -> Path:
    if settings.LOCKS_DIR:
        return Path(settings.LOCKS_DIR)
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        # an in-memory database lives in one process: so do its locks, and they go with it
        directory = Path(tempfile.gettempdir()) / f"clearance-locks-{os.getpid()}"
        if directory not in _temporary:
            _temporary.add(directory)
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        return directory
    return Path(f"{connection.settings_dict['NAME']}-locks")


def _lock_path(kind: str, number: int) -> Path:
    _keys(kind, number)
    directory = _lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{kind}-{number}.lock"


# --- the two implementations: try once, let go -----------------------------------------------

def _pg_try(kind, number) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", _keys(kind, number))
        return bool(cursor.fetchone()[0])


def _pg_release(kind, number) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", _keys(kind, number))
    except DatabaseError:
        # the connection is broken (its locks went with it) or its transaction aborted; closing it
        # outside a transaction frees every lock it held, so none can outlive this block
        log.warning("could not release lock %s/%s; closing the connection", kind, number, exc_info=True)
        if not connection.in_atomic_block:
            connection.close()


def _file_try(kind, number):
    fd = os.open(_lock_path(kind, number), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


# --- the API ------------------------------------------------------------------------------------

@contextlib.contextmanager
def held(kind: str, number: int = 0, *, wait: float | None = None):
    """Hold lock (kind, number) for the block. `wait`: seconds to wait for it, 0 to try once, None
    to wait as long as it takes. Raises LockBusy when it is not had in time."""
    deadline = None if wait is None else time.monotonic() + wait
    postgres = connection.vendor == "postgresql"
    while True:
        token = _pg_try(kind, number) if postgres else _file_try(kind, number)
        if token:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise LockBusy(f"{kind} {number}")
        time.sleep(POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
    try:
        yield
    finally:
        if postgres:
            _pg_release(kind, number)
        else:
            os.close(token)                     # closing the file lets go of the flock


def is_held(kind: str, number: int = 0) -> bool:
    """Whether anybody holds lock (kind, number) right now — this process included."""
    if connection.vendor == "postgresql":
        classid, objid = _keys(kind, number)
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                           "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                           "AND classid = %s::int::oid AND objid = %s::int::oid AND objsubid = 2)", [classid, objid])
            return bool(cursor.fetchone()[0])
    fd = _file_try(kind, number)
    if fd is None:
        return True
    os.close(fd)
    return False
