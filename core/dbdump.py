"""The database as one file and back, for backups (core/services/backups.py): a snapshot dump that
can be read while it is taken, and a restore that replaces the whole database at once.

- SQLite: SQLite's online backup API (`sqlite3.Connection.backup`) copies the live database page
  by page into a file — a consistent copy while web servers and workers go on — and back again,
  into the live database in one step (the destination is locked and replaced as a whole).
- PostgreSQL: `pg_dump --format=custom` run inside a snapshot exported from a REPEATABLE READ
  transaction, so what `read` saw (the file names, the migrations) and the dump are the same
  moment. Restoring runs the dump (as SQL, through `pg_restore -f -`) behind the statements that
  drop every table of the schema, all through one `psql --single-transaction`: the database is
  either the archive's or what it was before, never half of each.

The client programs are `pg_dump`, `pg_restore` and `psql` on PATH (Debian's postgresql-client),
or those in BACKUP_PG_BIN; they must be as new as the server."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

from django.conf import settings
from django.db import connection

T = TypeVar("T")
Reader = Callable[[str], list[tuple]]


class DumpError(Exception):
    """The database could not be dumped or loaded; the message is for a person."""


def vendor() -> str:
    return connection.vendor


def dump_name() -> str:
    """The dump's name inside an archive, by vendor."""
    return {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}[_supported()]


def _supported() -> str:
    if connection.vendor not in ("sqlite", "postgresql"):
        raise DumpError(f"Backups support SQLite and PostgreSQL, not {connection.vendor}.")
    return connection.vendor


def dump(path: Path, read: Callable[[Reader], T]) -> T:
    """Write a snapshot of the database to `path` and return `read(query)`, where `query(sql)`
    answers from that same snapshot."""
    if _supported() == "sqlite":
        return _sqlite_dump(path, read)
    return _pg_dump(path, read)


def load(path: Path) -> None:
    """Replace the whole database with the dump at `path` (every table dropped first)."""
    if _supported() == "sqlite":
        _sqlite_load(path)
    else:
        _pg_load(path)


# --- SQLite ----------------------------------------------------------------------------------------

def _sqlite_dump(path: Path, read):
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        connection.connection.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")   # one self-contained file, no -wal beside it
        return read(lambda sql: target.execute(sql).fetchall())
    except sqlite3.Error as exc:
        raise DumpError(f"SQLite backup failed: {exc}") from exc
    finally:
        target.close()


def _sqlite_load(path: Path) -> None:
    connection.ensure_connection()
    if connection.in_atomic_block:
        raise DumpError("Cannot restore inside a transaction.")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        source.backup(connection.connection)     # one step: the live database becomes the copy
    except sqlite3.Error as exc:
        raise DumpError(f"SQLite restore failed (is a web server or worker still using the database?): "
                        f"{exc}") from exc
    finally:
        source.close()


# --- PostgreSQL ------------------------------------------------------------------------------------

def _pg_program(name: str) -> str:
    folder = getattr(settings, "BACKUP_PG_BIN", "")
    found = str(Path(folder) / name) if folder else shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        raise DumpError(f"{name} was not found{' in ' + folder if folder else ' on PATH'}: install PostgreSQL's "
                        "client programs (Debian: apt-get install postgresql-client), as new as the server.")
    return found


def _pg_env() -> dict[str, str]:
    """The connection Django uses, as libpq environment variables (nothing on a command line)."""
    s = connection.settings_dict
    env = {**os.environ, "PGDATABASE": s["NAME"], "PGCONNECT_TIMEOUT": "10"}
    for key, var in (("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD"), ("HOST", "PGHOST"), ("PORT", "PGPORT")):
        if s.get(key):
            env[var] = str(s[key])
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                     ("sslkey", "PGSSLKEY")):
        if s.get("OPTIONS", {}).get(key):
            env[var] = str(s["OPTIONS"][key])
    return env


def _run(args: list[str], what: str, **kwargs) -> None:
    result = subprocess.run(args, env=_pg_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    if result.returncode:
        raise DumpError(f"{what} failed (exit {result.returncode}): "
                        f"{result.stderr.decode(errors='replace').strip()[-2000:]}")


def _pg_dump(path: Path, read):
    pg_dump = _pg_program("pg_dump")
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        raw.autocommit = False
        with raw.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()

            def query(sql):
                cursor.execute(sql)
                return cursor.fetchall()
            answer = read(query)
            # the snapshot lives as long as this transaction: pg_dump sees exactly what `read` saw
            _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                  f"--schema={_pg_schema(cursor)}", f"--file={path}"], "pg_dump")
        raw.rollback()
        return answer
    finally:
        raw.close()


def _pg_schema(cursor) -> str:
    cursor.execute("SELECT current_schema()")
    return cursor.fetchone()[0]


def _pg_load(path: Path) -> None:
    pg_restore, psql = _pg_program("pg_restore"), _pg_program("psql")
    with connection.cursor() as cursor:
        schema = _pg_schema(cursor)
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = %s", [schema])
        sequences = [row[0] for row in cursor.fetchall()]
    connection.close()                           # nothing of ours holds a lock on what is dropped
    q = connection.ops.quote_name
    wipe = "".join([
        "BEGIN;\nSET client_min_messages = warning;\n",
        f"DROP TABLE IF EXISTS {', '.join(q(t) for t in tables)} CASCADE;\n" if tables else "",
        f"DROP SEQUENCE IF EXISTS {', '.join(q(s) for s in sequences)} CASCADE;\n" if sequences else "",
    ])
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as errors:
        # the dump names its schema (pg_dump --schema); the schema is there already, its tables are what
        # is dropped and created: everything of the table of contents but the CREATE SCHEMA
        listing = subprocess.run([pg_restore, "--list", str(path)], env=_pg_env(), capture_output=True)
        if listing.returncode:
            raise DumpError(f"pg_restore could not read the dump: {listing.stderr.decode(errors='replace')[-2000:]}")
        contents = Path(tmp) / "contents.list"
        contents.write_bytes(b"".join(line for line in listing.stdout.splitlines(keepends=True)
                                      if not re.match(rb"^\d+; \d+ \d+ SCHEMA ", line)))
        script = subprocess.Popen([pg_restore, "--no-owner", "--no-privileges", "--no-comments",
                                   f"--use-list={contents}", "--file=-", str(path)],
                                  env=_pg_env(), stdout=subprocess.PIPE, stderr=errors)
        # one transaction, committed only once pg_restore has written the whole script: a script cut
        # short (pg_restore failed) ends without COMMIT and psql rolls it back on its way out
        runner = subprocess.Popen([psql, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--file=-"],
                                  env=_pg_env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            runner.stdin.write(wipe.encode())
            shutil.copyfileobj(script.stdout, runner.stdin, 1024 * 1024)
            script.stdout.close()
            if script.wait() == 0:
                runner.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:
            pass                                 # psql stopped at an error: said below
        finally:
            script.stdout.close()                # pg_restore never waits on a pipe nobody reads
            with contextlib.suppress(BrokenPipeError):
                runner.stdin.close()
        restored, loaded = script.wait(), runner.wait()
        if restored or loaded:
            errors.seek(0)
            raise DumpError(f"PostgreSQL restore failed (pg_restore exit {restored}, psql exit {loaded}); "
                            "the database was left as it was: "
                            f"{errors.read().decode(errors='replace').strip()[-2000:]}")
