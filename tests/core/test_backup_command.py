"""`manage.py backup` and `manage.py restore` (core/services/backups.py, README "Backups").

The round trip runs on the test runner's own database — SQLite (in memory) or PostgreSQL with
TEST_DATABASE_URL — in transaction=True tests, since pg_dump reads from its own connection and sees
only what is committed. The database is then wiped for real (every table dropped), the files
deleted, and `restore` must bring back every row of every model and every file's bytes. SQLite's
production shape (a file in WAL mode, other processes) is covered by running the two commands as
the IT office would, in subprocesses with the production settings against a database file.
Everything is written under tmp_path."""
from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from core.demo import seed_demo
from core.models import BalanceImport, ClearanceApproval, FinanceRecord, Payment, Student, User
from core.services import backups

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "fixtures" / "samples" / "balances_semicolon.csv"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture
def place(settings, tmp_path):
    """Files in tmp_path/media, archives in tmp_path/backups, work files and locks in tmp_path."""
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_TMP_DIR = str(tmp_path / "work")
    settings.LOCKS_DIR = str(tmp_path / "locks")
    settings.BACKUP_KEEP = 14
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(tmp_path / "media")}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    assert Path(default_storage.location) == tmp_path / "media"
    yield tmp_path
    if "core_student" not in connection.introspection.table_names():
        call_command("migrate", verbosity=0)     # a test that failed half-way leaves a database to flush


def world() -> dict:
    """The demo's 20 students, a receipt, a decision's evidence and a balance import file."""
    from core.services.approvals import approval_approve
    from core.services.balances import balances_import_preview
    from core.services.payments import payment_record

    seed_demo(students=20)
    admin = User.objects.get(email="admin@clearance.test")
    finance = User.objects.get(email="finance@clearance.test")
    student = Student.objects.order_by("registration_number").first()
    payment = payment_record(student=student, amount=5500, method="bank", transaction_code="BANK-BACKUP-1",
                             acting_user=finance, receipt=SimpleUploadedFile("receipt.pdf", PDF + b"receipt"))
    pending = (ClearanceApproval.objects.filter(status="pending", department__code="SPT")
               .exclude(request__student__holds__status="active", request__student__holds__department__code="SPT")
               .order_by("pk").first())
    approval_approve(approval=pending, acting_user=admin, evidence=SimpleUploadedFile("letter.pdf", PDF + b"letter"))
    balances_import_preview(file=SimpleUploadedFile(SAMPLE.name, SAMPLE.read_bytes()), acting_user=finance)
    files = {name: default_storage.open(name).read() for name in stored_names()}
    assert len(files) == 3, files.keys()        # receipt, evidence, import file
    return {"payment": payment.pk, "approval": pending.pk, "files": files}


def stored_names() -> list[str]:
    names = [p.receipt.name for p in Payment.objects.exclude(receipt="")]
    names += [a.evidence.name for a in ClearanceApproval.objects.exclude(evidence="")]
    names += [b.file.name for b in BalanceImport.objects.exclude(file="")]
    return sorted(names)


def row_counts() -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in apps.get_models(include_auto_created=True)
            if m._meta.managed and not m._meta.proxy}


def exact_values() -> dict:
    return {
        "students": list(Student.objects.order_by("pk").values_list("pk", "registration_number", "first_name",
                                                                    "programme_id", "user_id")),
        "balances": list(FinanceRecord.objects.order_by("pk").values_list("student_id", "tuition_balance")),
        "approvals": list(ClearanceApproval.objects.order_by("pk").values_list("pk", "status", "evidence")),
        "passwords": list(User.objects.order_by("pk").values_list("email", "password")),
    }


def wipe_everything(media: Path) -> None:
    """What a new host has: a database without a single table, an empty file storage."""
    tables = connection.introspection.table_names()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA foreign_keys = OFF")
            for table in tables:       # IF EXISTS: dropping the search index (FTS5) drops its own tables
                cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
            cursor.execute("PRAGMA foreign_keys = ON")
        else:
            cursor.execute(f"DROP TABLE {', '.join(connection.ops.quote_name(t) for t in tables)} CASCADE")
    assert connection.introspection.table_names() == []
    for path in sorted(media.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert not any(media.iterdir())


def backup(*args) -> str:
    out = io.StringIO()
    call_command("backup", *args, stdout=out)
    return out.getvalue()


def restore(*args) -> str:
    out = io.StringIO()
    call_command("restore", *args, stdout=out)
    return out.getvalue()


def archives(place) -> list[str]:
    return sorted(os.listdir(place / "backups"))


# --- the round trip --------------------------------------------------------------------------------

def test_backup_then_restore_onto_an_empty_database_and_storage_brings_everything_back(place):
    w = world()
    counts, values = row_counts(), exact_values()
    assert counts["core.Student"] == 20 and counts["core.ClearanceApproval"] > 20

    out = backup()
    (name,) = archives(place)
    assert f"Backed up the database ({connection.vendor}) and 3 files" in out and name in out

    wipe_everything(place / "media")
    out = restore("--latest", "--yes")

    assert f"Restored {name}" in out
    assert "files: 3 (3 written, 0 already there with the same bytes)" in out
    assert "no migrate needed" in out
    assert row_counts() == counts
    assert exact_values() == values
    assert {n: default_storage.open(n).read() for n in stored_names()} == w["files"]
    assert Payment.objects.get(pk=w["payment"]).receipt.read() == PDF + b"receipt"
    assert ClearanceApproval.objects.get(pk=w["approval"]).evidence.read() == PDF + b"letter"
    out = io.StringIO()
    call_command("check_consistency", stdout=out)
    assert "No violations" in out.getvalue()
    # the restored database goes on: new rows get new ids (sequences came back too)
    top = User.objects.order_by("-pk").first().pk
    assert User.objects.create_user(email="new@clearance.test", password="x" * 12, full_name="New").pk > top


def test_restore_over_a_database_that_moved_on_puts_it_back_as_it_was(place):
    w = world()
    counts, values = row_counts(), exact_values()
    backup()
    Student.objects.filter(pk=values["students"][0][0]).update(first_name="Changed")
    FinanceRecord.objects.all().delete()
    default_storage.delete(sorted(w["files"])[0])

    out = restore("--latest", "--yes")

    assert "files: 3 (1 written, 2 already there with the same bytes)" in out
    assert row_counts() == counts and exact_values() == values
    assert {n: default_storage.open(n).read() for n in stored_names()} == w["files"]


@pytest.mark.skipif(os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"),
                    reason="the SQLite file path; the PostgreSQL run covers pg_dump/pg_restore in-process")
def test_on_a_sqlite_file_the_commands_round_trip_as_the_it_office_runs_them(place):
    """Production settings, a database file in WAL mode, each command its own process."""
    w = world()
    counts = row_counts()
    db = place / "db.sqlite3"
    with sqlite3.connect(db) as target:
        connection.connection.backup(target)    # the test database, as a file (stdlib, not the code under test)
    target.close()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clearance_admin.settings", "DATABASE_URL": f"sqlite:///{db}",
           "MEDIA_ROOT": str(place / "media"), "BACKUP_DIR": str(place / "backups"),
           "BACKUP_TMP_DIR": str(place / "work"), "LOCKS_DIR": str(place / "locks"), "SECRET_KEY": "e2e-secret",
           "DEBUG": "false", "LOG_LEVEL": "WARNING", "STORAGE_BACKEND": "local", "BACKUP_STORAGE": "local"}
    env.pop("TEST_DATABASE_URL", None)

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)

    made = manage("backup")
    assert made.returncode == 0, made.stderr
    assert "and 3 files" in made.stdout
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"     # the settings' mode
    check.close()
    for path in place.glob("db.sqlite3*"):
        path.unlink()
    wipe_media = place / "media"
    for path in sorted(wipe_media.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    refused = manage("restore", "--latest")
    assert refused.returncode == 1 and "confirm with --yes" in refused.stderr
    done = manage("restore", "--latest", "--yes")
    assert done.returncode == 0, done.stderr
    assert "files: 3 (3 written" in done.stdout
    checked = manage("check_consistency")
    assert checked.returncode == 0 and "No violations" in checked.stdout

    restored = sqlite3.connect(db)
    try:
        for model in apps.get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                (n,) = restored.execute(f'SELECT COUNT(*) FROM "{model._meta.db_table}"').fetchone()
                assert n == counts[model._meta.label], model._meta.label
    finally:
        restored.close()
    for name, data in w["files"].items():
        assert (wipe_media / name).read_bytes() == data


# --- refusals --------------------------------------------------------------------------------------

def small_world() -> int:
    from tests.factories import StudentFactory
    StudentFactory.create_batch(3)
    return Student.objects.count()


def rewrite(archive: Path, change) -> None:
    """The archive again with `change(name, data) -> data` applied to each member."""
    members = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            members.append((member, change(member.name, tar.extractfile(member).read())))
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def only_archive(place) -> Path:
    (name,) = archives(place)
    return place / "backups" / name


def test_a_changed_file_in_the_archive_is_refused_and_nothing_is_restored(place):
    from core.services.payments import payment_record
    small_world()
    finance = User.objects.create_user(email="f@x.test", password="x" * 12, full_name="F")
    payment_record(student=Student.objects.first(), amount=1, method="bank", transaction_code="B-1",
                   acting_user=finance, receipt=SimpleUploadedFile("r.pdf", PDF))
    backup()
    rewrite(only_archive(place), lambda name, data: data.replace(b"endobj", b"ENDOBJ")
            if name.startswith("files/") else data)
    Payment.objects.all().delete()
    Student.objects.all().delete()

    with pytest.raises(CommandError, match=r"does not match its manifest.*files/receipts/.*checksum") as exc:
        restore("--latest", "--yes")
    assert exc.value.returncode == 1
    assert Student.objects.count() == 0         # untouched


def test_a_changed_manifest_is_refused(place):
    small_world()
    backup()

    def edit(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["files"] = []
        return json.dumps(manifest).encode()
    rewrite(only_archive(place), edit)

    with pytest.raises(CommandError, match="signature does not match"):
        restore("--latest", "--yes")


def test_an_archive_made_with_another_secret_key_is_refused_unless_that_key_is_a_fallback(place, settings):
    n = small_world()
    backup()
    settings.SECRET_KEY = "another-key"
    with pytest.raises(CommandError, match="signature does not match.*SECRET_KEY"):
        restore("--latest", "--yes")
    settings.SECRET_KEY_FALLBACKS = ["test-secret-of-the-suite-long-enough-for-hmac-sha256"]
    Student.objects.all().delete()
    assert "Restored" in restore("--latest", "--yes")
    assert Student.objects.count() == n


def test_a_truncated_archive_is_refused(place):
    small_world()
    backup()
    archive = only_archive(place)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(CommandError, match="not a complete backup archive"):
        restore("--latest", "--yes")


def test_restore_without_confirmation_is_refused(place, monkeypatch):
    n = small_world()
    backup()
    Student.objects.all().delete()
    with pytest.raises(CommandError, match="confirm with --yes"):
        restore("--latest")                     # no terminal to ask on

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda question: "no")
    with pytest.raises(CommandError, match="cancelled; nothing was changed"):
        restore("--latest")
    assert Student.objects.count() == 0
    monkeypatch.setattr("builtins.input", lambda question: "yes")
    restore("--latest")
    assert Student.objects.count() == n


def test_an_archive_with_migrations_newer_than_the_code_is_refused(place):
    small_world()
    recorder = MigrationRecorder(connection)
    recorder.record_applied("core", "9999_from_the_future")    # the database of a newer release
    try:
        backup()
        Student.objects.all().delete()
        with pytest.raises(CommandError, match=r"made by newer code.*core\.9999_from_the_future"):
            restore("--latest", "--yes")
        assert Student.objects.count() == 0
    finally:
        recorder.record_unapplied("core", "9999_from_the_future")   # flush leaves django_migrations alone


def test_an_older_archive_restores_and_says_migrate_is_needed(place):
    small_world()
    recorder = MigrationRecorder(connection)
    last = recorder.Migration.objects.filter(app="core").order_by("-id").first().name
    recorder.record_unapplied("core", last)    # the database as the code before that migration left it
    try:
        backup()
        recorder.record_applied("core", last)
        out = restore("--latest", "--yes")
        assert f"run `python manage.py migrate` now (core.{last})" in out
        assert not recorder.Migration.objects.filter(app="core", name=last).exists()   # as the archive had it
    finally:
        recorder.record_applied("core", last)


def test_naming_no_archive_or_one_that_is_not_there_is_refused(place):
    with pytest.raises(CommandError, match="Name one archive"):
        restore("--yes")
    with pytest.raises(CommandError, match="No backup found"):
        restore("--latest", "--yes")
    with pytest.raises(CommandError, match="No backup 'nope.tar.gz'"):
        restore("nope.tar.gz", "--yes")


# --- where archives go, and how many stay ----------------------------------------------------------

def test_retention_keeps_the_newest_n_and_a_failed_backup_deletes_nothing(place, settings, monkeypatch):
    small_world()
    settings.BACKUP_KEEP = 2
    backup()
    backup()
    first_two = archives(place)
    out = backup()
    kept = archives(place)
    assert len(kept) == 2 and kept[0] == first_two[1] and kept[1] not in first_two
    assert f"Deleted 1 older backup(s), keeping the last 2: {first_two[0]}" in out
    assert all(backups.ARCHIVE_RE.match(n) for n in kept)

    def broken(path, read):
        path.write_bytes(b"half a dump")
        raise backups.dbdump.DumpError("pg_dump failed (exit 1): disk full")
    monkeypatch.setattr(backups.dbdump, "dump", broken)
    with pytest.raises(CommandError, match="Backup failed: pg_dump failed"):
        backup()
    assert archives(place) == kept              # nothing pruned, no partial file left
    assert not any((place / "work").iterdir())

    assert restore("--list").splitlines()[-1].startswith("2 backup(s) at ")


def test_a_crash_while_writing_leaves_no_archive_under_its_final_name(place, monkeypatch):
    small_world()

    def crash(*args, **kwargs):
        raise OSError("No space left on device")
    monkeypatch.setattr(backups, "_add_bytes", crash)   # dies while writing the manifest
    with pytest.raises(OSError):
        backup()
    assert archives(place) == []


def test_archives_can_go_to_a_storage_alias(place, settings):
    """BACKUP_STORAGE=s3 makes the STORAGES alias "backups" (a bucket); any storage takes the same path."""
    n = small_world()
    settings.STORAGES = {**settings.STORAGES, "backups": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(place / "bucket")}}}
    out = backup()
    (name,) = os.listdir(place / "bucket")
    assert f"storage 'backups': {name}" in out and not (place / "backups").exists()
    Student.objects.all().delete()
    assert f"Restored {name}" in restore(name, "--yes")
    assert Student.objects.count() == n


# --- the nightly schedule --------------------------------------------------------------------------

def test_migrate_makes_the_nightly_backup_schedule_once_at_backup_time(settings):
    from django.utils import timezone
    from django_q.models import Schedule
    schedule = Schedule.objects.get(name="Nightly backup")             # made by migrate (post_migrate)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == ("core.tasks.backup_task", Schedule.DAILY, -1)
    assert timezone.localtime(schedule.next_run).strftime("%H:%M") == settings.BACKUP_TIME == "02:30"
    backups.backup_schedule_ensure()
    backups.backup_schedule_ensure()
    assert Schedule.objects.filter(name="Nightly backup").count() == 1

    settings.BACKUP_TIME = "04:15"
    backups.backup_schedule_ensure()
    schedule.refresh_from_db()
    assert timezone.localtime(schedule.next_run).strftime("%H:%M") == "04:15"
    assert schedule.next_run > timezone.now()
    settings.BACKUP_TIME = ""
    backups.backup_schedule_ensure()
    assert not Schedule.objects.filter(name="Nightly backup").exists()


def test_the_nightly_task_backs_up_and_a_failure_shows_under_failed_tasks(place, monkeypatch):
    from django.utils import timezone
    from django_q.models import Failure, Task
    from django_q.tasks import async_task

    from core.tasks import backup_task
    small_world()
    async_task("core.tasks.backup_task", task_name="nightly-ok")           # sync in tests: runs here
    ok = Task.objects.get(name="nightly-ok")
    assert ok.success and "Backed up the database" in ok.result and len(archives(place)) == 1

    def broken(**kwargs):
        raise backups.BackupError("pg_dump was not found on PATH")
    monkeypatch.setattr(backups, "backup_create", broken)
    with pytest.raises(backups.BackupError):
        backup_task()
    # through a worker as the cluster runs it (not sync, which re-raises): recorded as failed
    worker_runs({"id": uuid.uuid4().hex, "name": "nightly-broken", "func": "core.tasks.backup_task", "args": (),
                 "kwargs": {}, "started": timezone.now()})
    failed = Task.objects.get(name="nightly-broken")
    assert not failed.success and "pg_dump was not found" in failed.result
    assert Failure.objects.filter(name="nightly-broken").exists()      # /admin/ → Failed tasks


def worker_runs(task: dict) -> None:
    """One task through django-q's worker and monitor, as the cluster hands it over."""
    from multiprocessing import Queue, Value

    from django_q.monitor import monitor
    from django_q.worker import worker
    tasks, results = Queue(), Queue()
    tasks.put(task)
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    results.put("STOP")
    monitor(results)
    for q in (tasks, results):
        q.close()
        q.join_thread()


def test_files_and_archives_in_s3_buckets_round_trip(place, settings):
    """STORAGE_BACKEND=s3 and BACKUP_STORAGE=s3 as settings make them, against moto's S3 server."""
    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    from core.services.payments import payment_record
    from tests.core.test_storage_s3 import _free_port

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket="files")
        options = {"endpoint_url": endpoint, "region_name": "us-east-1", "addressing_style": "path",
                   "default_acl": "private", "querystring_auth": False, "file_overwrite": False,
                   "access_key": "testing", "secret_key": "testing"}
        settings.STORAGES = {
            "default": {"BACKEND": "storages.backends.s3.S3Storage",
                        "OPTIONS": {**options, "bucket_name": "files", "location": ""}},
            "backups": {"BACKEND": "storages.backends.s3.S3Storage",
                        "OPTIONS": {**options, "bucket_name": "files", "location": "backups"}},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        small_world()
        finance = User.objects.create_user(email="f@x.test", password="x" * 12, full_name="F")
        payment = payment_record(student=Student.objects.first(), amount=1, method="bank", transaction_code="B-1",
                                 acting_user=finance, receipt=SimpleUploadedFile("r.pdf", PDF))
        counts = row_counts()
        out = backup()
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="files")["Contents"])
        (archive,) = [k for k in keys if k.startswith("backups/")]
        assert "and 1 file" in out and f"storage 'backups': {archive.removeprefix('backups/')}" in out

        s3.delete_object(Bucket="files", Key=payment.receipt.name)
        Payment.objects.all().delete()
        assert "files: 1 (1 written" in restore("--latest", "--yes")
        assert row_counts() == counts
        assert s3.get_object(Bucket="files", Key=payment.receipt.name)["Body"].read() == PDF
        assert Payment.objects.get(pk=payment.pk).receipt.read() == PDF
    finally:
        server.stop()
