"""export_log_record: every export is logged, by a person or by the system, and is in the audit trail."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.history import audit_context
from core.selectors.reports import REPORTS
from core.services.exports import export_log_record


def test_a_persons_export_is_logged_with_history_ip_and_in_the_audit_trail(registry_user):
    with audit_context(ip="10.1.2.3"):
        log = export_log_record(report="gowns", filters={"school": "SCE"}, format="csv", rows=4,
                                acting_user=registry_user)
    assert (log.user, log.made_by, log.filters, log.rows) == (registry_user, "", {"school": "SCE"}, 4)
    record = log.history.get()
    assert (record.history_user, record.ip_address) == (registry_user, "10.1.2.3")
    trail = [r for r in REPORTS["audit_trail"].rows() if r[4] == "ExportLog"]
    assert [(r[1], r[2], r[3], r[5], r[6]) for r in trail] == [
        ("registry@clearance.test", "10.1.2.3", "exported gowns (4 rows)", log.pk, "created")]


def test_a_system_export_names_what_made_it(db):
    log = export_log_record(report="gowns", filters={}, format="xlsx", rows=0, system=True,
                            made_by="command export_report")
    assert (log.user, log.made_by) == (None, "command export_report")


@pytest.mark.parametrize("kwargs, message", [
    (dict(report="nope", format="csv", system=True), "There is no report called nope."),
    (dict(report="gowns", format="pdf", system=True), "Reports are exported as xlsx or csv, not pdf."),
    (dict(report="gowns", format="csv"), "An export is made by a person or, from a command, by the system."),
])
def test_refusals(db, kwargs, message):
    with pytest.raises(ValidationError) as exc:
        export_log_record(filters={}, rows=0, **kwargs)
    assert exc.value.messages == [message]


# --- exports in the background ("My exports") ---------------------------------------------------

import datetime  # noqa: E402

import openpyxl  # noqa: E402
from django.utils import timezone  # noqa: E402

from core.models import ExportFile, ExportLog  # noqa: E402
from core.selectors.reports import Column  # noqa: E402
from core.services import exports as export_services  # noqa: E402
from core.services.exports import (export_queue, export_take, export_write, exports_sweep)  # noqa: E402

COLUMNS = [Column("Registration number"), Column("Amount", "money")]


def _queued(user, **kwargs):
    defaults = dict(acting_user=user, site="registry", kind="report", name="gowns", title="Gowns — all",
                    params={"role": "Registry", "filters": {}}, format="xlsx", task="core.tasks.export_report_task")
    return export_queue(**{**defaults, **kwargs})


def test_a_queued_export_is_written_once_with_progress_on_its_row_and_logged(registry_user, monkeypatch):
    export = _queued(registry_user)            # on_commit never fires inside the test's transaction
    assert export.status == "queued" and export.is_pending
    monkeypatch.setattr(export_services, "PROGRESS_EVERY", 2)
    seen = []

    def rows():
        for i in range(5):
            seen.append(ExportFile.objects.get(pk=export.pk).rows)     # what "My exports" shows meanwhile
            yield (f"=R{i}", i * 10)
    taken = export_take(export.pk)
    assert taken is not None and taken.status == "running"
    assert export_take(export.pk) is None                               # delivered twice: once only
    export_write(taken, rows=rows(), columns=COLUMNS, title="Gowns — all", sheet="Gowns", log_name="gowns",
                 log_filters={})
    assert seen == [0, 0, 2, 2, 4]
    export.refresh_from_db()
    assert (export.status, export.rows, export.file_name.endswith(".xlsx")) == ("done", 5, True)
    assert export.kept_until() == export.finished_at + datetime.timedelta(days=7)
    with export.file.open("rb") as handle:
        sheet = openpyxl.load_workbook(handle).active
        values = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert values[0] == ["'=R0", 0] and len(values) == 5                 # neutralised like every export
    log = ExportLog.objects.get()
    assert (log.user, log.report, log.rows, log.format) == (registry_user, "gowns", 5, "xlsx")


def test_an_export_that_fails_half_way_is_failed_with_the_reason_and_keeps_no_file(registry_user):
    export = export_take(_queued(registry_user, format="csv").pk)

    def rows():
        yield ("A", 1)
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        export_write(export, rows=rows(), columns=COLUMNS, title="t", sheet="s", log_name="gowns", log_filters={})
    export.refresh_from_db()
    assert export.status == "failed" and "disk full" in export.error and not export.file
    assert not ExportLog.objects.exists()


def test_the_sweep_ends_dead_and_never_started_exports_and_deletes_files_kept_too_long(registry_user, settings):
    now = timezone.now()
    dead = export_take(_queued(registry_user).pk)
    ExportFile.objects.filter(pk=dead.pk).update(started_at=now - datetime.timedelta(seconds=settings.JOB_CLAIM_MAX_AGE + 5))
    never = _queued(registry_user)
    ExportFile.objects.filter(pk=never.pk).update(created_at=now - datetime.timedelta(seconds=settings.JOB_START_MAX_AGE + 5))
    old = export_take(_queued(registry_user, format="csv").pk)
    export_write(old, rows=iter([("A", 1)]), columns=COLUMNS, title="t", sheet="s", log_name="gowns", log_filters={})
    old.refresh_from_db()
    stored = old.file.name
    ExportFile.objects.filter(pk=old.pk).update(finished_at=now - datetime.timedelta(days=settings.EXPORT_KEEP_DAYS, seconds=5))
    fresh = _queued(registry_user)
    assert exports_sweep(now=now) == {"stopped": 1, "never_started": 1, "expired": 1}
    statuses = dict(ExportFile.objects.values_list("pk", "status"))
    assert statuses == {dead.pk: "failed", never.pk: "failed", old.pk: "expired", fresh.pk: "queued"}
    assert not old.file.storage.exists(stored)
    assert "stopped" in ExportFile.objects.get(pk=dead.pk).error
    assert exports_sweep(now=now) == {"stopped": 0, "never_started": 0, "expired": 0}


def test_a_swept_export_whose_worker_comes_back_keeps_nothing(registry_user):
    export = export_take(_queued(registry_user, format="csv").pk)
    ExportFile.objects.filter(pk=export.pk).update(status="failed", error="swept")
    export_write(export, rows=iter([("A", 1)]), columns=COLUMNS, title="t", sheet="s", log_name="gowns", log_filters={})
    assert ExportFile.objects.get(pk=export.pk).status == "failed" and not ExportLog.objects.exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="report", name="nope"), "There is no report called nope."),
    (dict(kind="list", name="gowns_and_more"), "There is no list called gowns_and_more."),
    (dict(format="pdf"), "Exports are xlsx or csv, not pdf."),
])
def test_queue_refusals(registry_user, kwargs, message):
    with pytest.raises(ValidationError) as exc:
        _queued(registry_user, **kwargs)
    assert exc.value.messages == [message]
