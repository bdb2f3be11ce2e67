"""Backups: the database and the stored files in one archive, and back (README "Backups").

An archive, `clearance-backup-<UTC time>.tar.gz`, holds
- the database dump (`database.sqlite3`: a copy by SQLite's backup API; `database.pgdump`:
  pg_dump's custom format), see core/dbdump.py;
- `files/<name>`: every file a FileField of any model refers to, read from the default storage
  under the same name;
- `manifest.json`: when, which code (Django, Python, the app's revision), the database vendor, the
  migrations applied, the rows per table, and the size and sha256 of the dump and of every file;
  `manifest.sig`: the manifest signed with SECRET_KEY (django.core.signing), so an archive nobody
  here made cannot be restored.
The file names and the migrations are read from the same snapshot the dump is taken from, so the
files are those the dumped rows name (a file is never rewritten in place: every upload gets a new
random name). Archives are written under a temporary name and renamed (a folder) or uploaded
(a bucket) only once complete; older ones are deleted after a new one succeeded (BACKUP_KEEP).

Restoring verifies everything first (signature, every checksum, migrations not newer than the
code's, same database vendor), then writes the files (under their names: unreferenced until the
database names them), then replaces the database as a whole."""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import django
from django.apps import apps
from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import default_storage, storages
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from .. import dbdump, locks

log = logging.getLogger(__name__)

FORMAT = "clearance-backup/1"
PREFIX = "clearance-backup-"
ARCHIVE_RE = re.compile(r"^clearance-backup-\d{8}-\d{6}-\d{6}\.tar\.gz$")
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
SIGNING_SALT = "core.services.backups.manifest"
LOCK = "backup"
SCHEDULE = "Nightly backup"
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why, for a person."""


@dataclass
class BackupResult:
    name: str
    where: str
    size: int
    vendor: str
    files: int
    files_bytes: int
    missing: list[str]
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Backed up the database ({self.vendor}) and {self.files} file{'s' * (self.files != 1)} "
                 f"({_size(self.files_bytes)}) to {self.where} ({_size(self.size)})."]
        if self.missing:
            lines.append(f"Warning: {len(self.missing)} file(s) the database refers to are not in the storage "
                         f"and are not in the archive: {', '.join(self.missing[:10])}"
                         f"{' …' if len(self.missing) > 10 else ''}")
        if self.deleted:
            lines.append(f"Deleted {len(self.deleted)} older backup(s), keeping the last {settings.BACKUP_KEEP}: "
                         f"{', '.join(self.deleted)}")
        return "\n".join(lines)


@dataclass
class RestoreResult:
    name: str
    manifest: dict
    files_written: int
    files_already_there: int
    pending_migrations: list[str]

    def summary(self) -> str:
        m = self.manifest
        rows = sum(m["rows"].values())
        lines = [f"Restored {self.name}, made {m['created_at']} (Django {m['django']}, revision {m['revision']}):",
                 f"  database: {m['database']['vendor']}, {len(m['rows'])} tables, {rows} rows, "
                 f"{len(m['migrations'])} migrations applied",
                 f"  files: {len(m['files'])} ({self.files_written} written, {self.files_already_there} already "
                 f"there with the same bytes)"]
        if m.get("missing"):
            lines.append(f"  {len(m['missing'])} file(s) were already missing when the backup was made: "
                         f"{', '.join(m['missing'][:10])}")
        if self.pending_migrations:
            lines.append(f"This code has {len(self.pending_migrations)} migration(s) the backup has not: run "
                         f"`python manage.py migrate` now ({', '.join(self.pending_migrations[:5])}"
                         f"{' …' if len(self.pending_migrations) > 5 else ''}).")
        else:
            lines.append("The database is at this code's migrations: no migrate needed.")
        lines.append("Check it with `python manage.py check_consistency`.")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


# --- where archives go: a folder, or a storage (the STORAGES alias "backups") ----------------------

class _Folder:
    def __init__(self, path: Path):
        self.path = Path(path)

    def describe(self, name: str) -> str:
        return str(self.path / name)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(n for n in os.listdir(self.path) if ARCHIVE_RE.match(n))

    @contextmanager
    def writing(self, name: str, tmp: Path) -> Iterator[Path]:
        """A path to write the archive to; it becomes `name` only when the block ends without error."""
        self.path.mkdir(parents=True, exist_ok=True)
        partial = self.path / f".{name}.partial"
        try:
            yield partial
            with open(partial, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, self.path / name)
        finally:
            partial.unlink(missing_ok=True)

    @contextmanager
    def local(self, name: str, tmp: Path) -> Iterator[Path]:
        yield self.path / name

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)


class _Storage:
    def __init__(self, alias: str):
        self.alias, self.storage = alias, storages[alias]

    def describe(self, name: str) -> str:
        return f"storage {self.alias!r}: {name}"

    def names(self) -> list[str]:
        try:
            _, files = self.storage.listdir("")
        except FileNotFoundError:
            return []
        return sorted(n for n in files if ARCHIVE_RE.match(n))

    @contextmanager
    def writing(self, name: str, tmp: Path) -> Iterator[Path]:
        path = tmp / name                          # built here, uploaded whole: never seen half-written
        yield path
        with open(path, "rb") as fh:
            saved = self.storage.save(name, File(fh, name=name))
        if saved != name:
            self.storage.delete(saved)
            raise BackupError(f"{self.describe(name)} already exists; nothing was written.")

    @contextmanager
    def local(self, name: str, tmp: Path) -> Iterator[Path]:
        path = tmp / name
        with self.storage.open(name, "rb") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        yield path

    def delete(self, name: str) -> None:
        self.storage.delete(name)


def destination() -> _Folder | _Storage:
    if "backups" in settings.STORAGES:
        return _Storage("backups")
    return _Folder(settings.BACKUP_DIR)


def backups_list() -> list[str]:
    """The archives at the destination, oldest first."""
    return destination().names()


@contextmanager
def _workdir() -> Iterator[Path]:
    base = settings.BACKUP_TMP_DIR or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clearance-backup-", dir=base) as tmp:
        yield Path(tmp)


# --- what a snapshot holds -------------------------------------------------------------------------

def _file_fields() -> list[tuple[str, str]]:
    """(table, column) of every FileField of every model."""
    found = []
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        for f in model._meta.local_concrete_fields:
            if isinstance(f, models.FileField):
                found.append((model._meta.db_table, f.column))
    return found


def _model_tables() -> list[str]:
    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True)
              if m._meta.managed and not m._meta.proxy}
    return sorted(tables)


def _read_snapshot(query) -> dict:
    q = connection.ops.quote_name
    if connection.vendor == "sqlite":
        existing = {r[0] for r in query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    else:
        existing = {r[0] for r in query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    names = set()
    for table, column in _file_fields():
        if table in existing:
            names.update(r[0] for r in query(f"SELECT DISTINCT {q(column)} FROM {q(table)} "
                                             f"WHERE {q(column)} IS NOT NULL AND {q(column)} <> ''"))
    migrations = [[a, n] for a, n in query("SELECT app, name FROM django_migrations ORDER BY id")] \
        if "django_migrations" in existing else []
    rows = {t: query(f"SELECT COUNT(*) FROM {q(t)}")[0][0] for t in _model_tables() if t in existing}
    return {"files": sorted(names), "migrations": migrations, "rows": rows}


def _revision() -> str:
    if os.environ.get("APP_REVISION"):
        return os.environ["APP_REVISION"]
    try:
        return subprocess.run(["git", "-C", str(settings.BASE_DIR), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and "\\" not in name and all(p not in ("", ".", "..") for p in parts)


class _Hashing(io.RawIOBase):
    """Reads through to `raw`, hashing and counting what passes."""

    def __init__(self, raw):
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def readable(self):
        return True

    def read(self, n=-1):
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def _sha256(fh) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    while chunk := fh.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o600
    tar.addfile(info, io.BytesIO(data))


def _sign(text: str) -> str:
    return signing.Signer(salt=SIGNING_SALT).signature(text)


def _signed(text: str, signature: str) -> bool:
    try:
        signing.Signer(salt=SIGNING_SALT, fallback_keys=settings.SECRET_KEY_FALLBACKS).unsign(f"{text}:{signature}")
    except signing.BadSignature:
        return False
    return True


# --- backup ----------------------------------------------------------------------------------------

def backup_create(*, keep: int | None = None) -> BackupResult:
    """Write a new archive of the database and the stored files to the destination, then delete
    the oldest archives beyond `keep` (BACKUP_KEEP; 0 keeps all). Refused while another backup runs;
    nothing is left at the destination when it fails."""
    keep = settings.BACKUP_KEEP if keep is None else keep
    try:
        with locks.held(LOCK, 0, wait=0):
            result = _backup(destination())
    except locks.LockBusy:
        raise BackupError("Another backup is running; try again when it has finished.") from None
    except dbdump.DumpError as exc:
        raise BackupError(str(exc)) from exc
    result.deleted = backups_prune(keep=keep)
    log.info("backup written", extra={"backup": result.name, "size": result.size, "files": result.files,
                                      "missing": len(result.missing), "deleted": result.deleted})
    return result


def _backup(dest) -> BackupResult:
    now = timezone.now()
    name = f"{PREFIX}{now.astimezone(datetime.timezone.utc):%Y%m%d-%H%M%S-%f}.tar.gz"
    storage = default_storage
    with _workdir() as tmp:
        dump_path = tmp / dbdump.dump_name()
        snapshot = dbdump.dump(dump_path, _read_snapshot)
        with open(dump_path, "rb") as fh:
            dump_sha, dump_size = _sha256(fh)
        entries, missing, mtime = [], [], now.timestamp()
        with dest.writing(name, tmp) as path:
            with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
                tar.add(dump_path, arcname=dbdump.dump_name(), recursive=False)
                for file_name in snapshot["files"]:
                    if not _safe_name(file_name):
                        raise BackupError(f"A stored file name is not a safe path: {file_name!r}")
                    try:
                        size = storage.size(file_name)
                        src = storage.open(file_name, "rb")
                    except (FileNotFoundError, OSError):
                        missing.append(file_name)
                        continue
                    with src:
                        info = tarfile.TarInfo(f"files/{file_name}")
                        info.size, info.mtime, info.mode = size, mtime, 0o600
                        reader = _Hashing(src)
                        tar.addfile(info, reader)
                    entries.append({"name": file_name, "size": size, "sha256": reader.sha.hexdigest()})
                if missing and not _storage_answers(storage):
                    raise BackupError("The file storage could not be read; nothing was written.")
                manifest = {
                    "format": FORMAT,
                    "created_at": now.isoformat(),
                    "django": django.get_version(),
                    "python": platform.python_version(),
                    "revision": _revision(),
                    "database": {"vendor": connection.vendor, "member": dbdump.dump_name(),
                                 "size": dump_size, "sha256": dump_sha},
                    "migrations": snapshot["migrations"],
                    "rows": snapshot["rows"],
                    "storage": type(storage).__name__,
                    "files": entries,
                    "missing": missing,
                }
                text = json.dumps(manifest, indent=1, sort_keys=True)
                _add_bytes(tar, MANIFEST, text.encode(), mtime)
                _add_bytes(tar, SIGNATURE, _sign(text).encode(), mtime)
            size = path.stat().st_size
    return BackupResult(name=name, where=dest.describe(name), size=size, vendor=connection.vendor,
                        files=len(entries), files_bytes=sum(e["size"] for e in entries), missing=missing)


def _storage_answers(storage) -> bool:
    """A storage that lost a file or two is worth a warning; one that answers nothing (wrong bucket,
    no credentials) is a failure, not a backup without files."""
    try:
        storage.listdir("")
    except FileNotFoundError:
        return True                                # an empty local folder: nothing there, truly
    except Exception:
        return False
    return True


def backups_prune(*, keep: int) -> list[str]:
    """Delete the oldest archives beyond the newest `keep` (0: keep all); returns their names."""
    if keep <= 0:
        return []
    dest = destination()
    old = dest.names()[:-keep]
    for name in old:
        dest.delete(name)
    return old


# --- restore ---------------------------------------------------------------------------------------

def _code_migrations() -> set[tuple[str, str]]:
    return set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def backup_verify(path: Path, *, extract_dump_to: Path | None = None) -> dict:
    """The archive's manifest, once its signature and every checksum match (and the database dump,
    extracted to `extract_dump_to` when given). BackupError saying what does not match otherwise."""
    seen: dict[str, tuple[str, int]] = {}
    text = signature = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    raise BackupError(f"{path.name}: unexpected entry {member.name!r} (not a file).")
                if member.name in seen:
                    raise BackupError(f"{path.name}: {member.name!r} appears twice.")
                fh = tar.extractfile(member)
                if member.name in (MANIFEST, SIGNATURE):
                    data = fh.read(10 * 1024 * 1024).decode()
                    text, signature = (data, signature) if member.name == MANIFEST else (text, data)
                    seen[member.name] = ("", 0)
                    continue
                if extract_dump_to is not None and not member.name.startswith("files/"):
                    with open(extract_dump_to, "wb") as out:
                        reader = _Hashing(fh)
                        shutil.copyfileobj(reader, out, CHUNK)
                    seen[member.name] = (reader.sha.hexdigest(), reader.size)
                else:
                    seen[member.name] = _sha256(fh)
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path.name} is not a complete backup archive ({type(exc).__name__}: {exc}).") from exc
    if text is None or signature is None:
        raise BackupError(f"{path.name} has no manifest; it is not a Clearance backup.")
    if not _signed(text, signature):
        raise BackupError(f"{path.name}: the manifest's signature does not match: the archive was changed, or "
                          "it was made with another SECRET_KEY (set the one it was made with, or list that "
                          "one in SECRET_KEY_FALLBACKS).")
    manifest = json.loads(text)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path.name}: format {manifest.get('format')!r}; this code reads {FORMAT}.")
    expected = {manifest["database"]["member"]: (manifest["database"]["sha256"], manifest["database"]["size"])}
    expected.update({f"files/{e['name']}": (e["sha256"], e["size"]) for e in manifest["files"]})
    got = {k: v for k, v in seen.items() if k not in (MANIFEST, SIGNATURE)}
    problems = [f"{n}: missing" for n in sorted(expected.keys() - got.keys())]
    problems += [f"{n}: not in the manifest" for n in sorted(got.keys() - expected.keys())]
    problems += [f"{n}: checksum does not match" for n in sorted(expected.keys() & got.keys())
                 if expected[n] != got[n]]
    if problems:
        raise BackupError(f"{path.name} does not match its manifest; nothing was restored: "
                          f"{'; '.join(problems[:10])}{' …' if len(problems) > 10 else ''}")
    if not all(_safe_name(e["name"]) for e in manifest["files"]):
        raise BackupError(f"{path.name} names a file outside the storage; nothing was restored.")
    return manifest


@contextmanager
def backup_open(archive: str | None, *, latest: bool = False) -> Iterator[tuple[str, Path]]:
    """(name, local path) of the archive to restore: a file path, a name at the destination, or
    the newest there (`latest`). BackupError when there is none."""
    dest = destination()
    if latest:
        names = dest.names()
        if not names:
            raise BackupError(f"No backup found at {dest.describe('')}.")
        archive = names[-1]
    if archive is None:
        raise BackupError("Name an archive (a file or a name from `restore --list`), or say --latest.")
    with _workdir() as tmp:
        if os.path.isfile(archive):
            yield Path(archive).name, Path(archive)
        elif ARCHIVE_RE.match(archive) and archive in dest.names():
            with dest.local(archive, tmp) as path:
                yield archive, path
        else:
            raise BackupError(f"No backup {archive!r}: neither a file nor an archive at {dest.describe('')}.")


def backup_check(manifest: dict, *, name: str) -> list[str]:
    """Refuse what cannot be restored here; returns this code's migrations the archive lacks."""
    vendor = manifest["database"]["vendor"]
    if vendor != connection.vendor:
        raise BackupError(f"{name} holds a {vendor} database; this installation uses {connection.vendor}. "
                          "Restore it into the same kind of database (DATABASE_URL).")
    archived = {tuple(m) for m in manifest["migrations"]}
    code = _code_migrations()
    newer = sorted(f"{a}.{n}" for a, n in archived - code)
    if newer:
        raise BackupError(f"{name} was made by newer code: its database has migrations this code does not have "
                          f"({', '.join(newer[:5])}{' …' if len(newer) > 5 else ''}; revision "
                          f"{manifest['revision']}). Install that version first; nothing was restored.")
    return sorted(f"{a}.{n}" for a, n in code - archived)


def backup_restore(*, name: str, path: Path) -> RestoreResult:
    """Replace the database and add the stored files with those of the archive at `path`, after
    verifying it (backup_verify, backup_check). The files are written first (unreferenced until
    the database names them), then the database is replaced as a whole; a failure in either
    leaves the database as it was."""
    with _workdir() as tmp:
        dump_path = tmp / "database"
        manifest = backup_verify(path, extract_dump_to=dump_path)
        pending = backup_check(manifest, name=name)
        written, same = _restore_files(path, manifest)
        try:
            dbdump.load(dump_path)
        except dbdump.DumpError as exc:
            raise BackupError(f"{exc} (the {written} file(s) written are unreferenced until a restore succeeds)") \
                from exc
    _after_restore()
    _check_rows(manifest, name=name)
    log.info("backup restored", extra={"backup": name, "files_written": written})
    return RestoreResult(name=name, manifest=manifest, files_written=written, files_already_there=same,
                         pending_migrations=pending)


def _restore_files(path: Path, manifest: dict) -> tuple[int, int]:
    storage = default_storage
    wanted = {f"files/{e['name']}": e for e in manifest["files"]}
    written = same = 0
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            entry = wanted.get(member.name)
            if entry is None:
                continue
            name = entry["name"]
            if storage.exists(name):
                with storage.open(name, "rb") as fh:
                    if _sha256(fh) == (entry["sha256"], entry["size"]):
                        same += 1
                        continue
                storage.delete(name)
            content = File(tar.extractfile(member), name=name)
            content.size = member.size
            saved = storage.save(name, content)
            if saved != name:
                raise BackupError(f"The storage saved {name} as {saved}; stopped before touching the database.")
            written += 1
    return written, same


def _after_restore() -> None:
    from django.contrib.contenttypes.models import ContentType
    ContentType.objects.clear_cache()           # ids in this process's cache are the old database's


def _check_rows(manifest: dict, *, name: str) -> None:
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        wrong = []
        for table, count in manifest["rows"].items():
            cursor.execute(f"SELECT COUNT(*) FROM {q(table)}")
            if cursor.fetchone()[0] != count:
                wrong.append(table)
    if wrong:
        raise BackupError(f"After restoring {name}, {len(wrong)} table(s) do not hold the rows the manifest "
                          f"counts: {', '.join(wrong[:10])}")


# --- the nightly schedule --------------------------------------------------------------------------

def _parse_time(value: str) -> datetime.time | None:
    if not value:
        return None
    try:
        return datetime.datetime.strptime(value.strip(), "%H:%M").time()
    except ValueError:
        raise BackupError(f"BACKUP_TIME={value!r}: write it as HH:MM (24-hour, local time), or empty for none.") \
            from None


def _next_run(at: datetime.time, now: datetime.datetime | None = None) -> datetime.datetime:
    now = timezone.localtime(now)
    run = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return run if run > now else run + datetime.timedelta(days=1)


def backup_schedule_ensure(**kwargs) -> None:
    """"Nightly backup" as a django-q schedule, daily at BACKUP_TIME (local time; visible in
    /admin/ under Schedules). Idempotent; run after every migrate. A changed BACKUP_TIME moves the
    next run; an empty one removes the schedule."""
    from django_q.models import Schedule
    if Schedule._meta.db_table not in connection.introspection.table_names():
        return
    at = _parse_time(settings.BACKUP_TIME)
    if at is None:
        Schedule.objects.filter(name=SCHEDULE).delete()
        return
    schedule, created = Schedule.objects.get_or_create(name=SCHEDULE, defaults=dict(
        func="core.tasks.backup_task", schedule_type=Schedule.DAILY, repeats=-1, next_run=_next_run(at)))
    if not created and schedule.next_run and timezone.localtime(schedule.next_run).time() != at:
        schedule.next_run = _next_run(at)
        schedule.save(update_fields=["next_run"])
