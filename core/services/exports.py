"""Exports are logged: who made which report or list, with which filters, in which format, how many
rows. A long one is written in the background (`export_queue` → a worker's `export_write`) and kept
for EXPORT_KEEP_DAYS under its maker's "My exports"; `exports_sweep` ends the ones whose worker
died and deletes the files whose kept time is over."""
from __future__ import annotations

import datetime
import logging
import tempfile

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from ..history import audit_context, save_tracked
from ..models import ExportFile, ExportLog

log = logging.getLogger(__name__)
E = ExportFile.Status
PROGRESS_EVERY = 2000               # rows between two progress figures on the export's row
SPOOL_BYTES = 16 * 1024 * 1024      # a file under this is written in memory, a larger one to a temporary file


def _known_export(report: str) -> bool:
    from ..exports.resources import BY_NAME
    from ..selectors.reports import REPORTS
    if report.startswith("list:"):
        return report[len("list:"):] in BY_NAME
    return report in REPORTS


@transaction.atomic
def export_log_record(*, report: str, filters: dict, format: str, rows: int, acting_user=None,
                      system: bool = False, made_by: str = "") -> ExportLog:
    """Record one export. `report` is a report's name or, for a list, "list:<name>" (a resource of
    core/exports/resources.py). Refused (ValidationError): a report, list or format that does not
    exist, and an export with neither a person (`acting_user`) nor `system=True` (a command, a
    schedule) behind it; `made_by` names what made a system export (the command), 'system' when not
    given."""
    if not _known_export(report):
        raise ValidationError(f"There is no report called {report}.")
    if format not in ExportLog.Format.values:
        raise ValidationError(f"Reports are exported as xlsx or csv, not {format}.")
    if acting_user is None and not system:
        raise ValidationError("An export is made by a person or, from a command, by the system.")
    log_row = ExportLog(user=acting_user, made_by="" if acting_user else (made_by or "system")[:100], report=report,
                        filters=dict(filters), format=format, rows=rows)
    return save_tracked(log_row, user=acting_user, reason=f"exported {report} ({rows} rows)")


# --- in the background ------------------------------------------------------------------------

def export_queue(*, acting_user, site: str, kind: str, name: str, title: str, params: dict, format: str,
                 task: str, expected: int | None = None, ip: str | None = None) -> ExportFile:
    """Queue an export for a worker (`task`, a dotted function taking the export's id) and return
    it, as listed under "My exports". `params` is what the task needs to make the same rows again
    as `acting_user` (it checks their rights again when it runs); `expected`, when known, is the
    number of rows (for a percentage)."""
    if acting_user is None or not acting_user.is_authenticated:
        raise ValidationError("An export in the background is made for a person.")
    if format not in ExportLog.Format.values:
        raise ValidationError(f"Exports are xlsx or csv, not {format}.")
    if kind not in ExportFile.Kind.values or not _known_export(name if kind == "report" else f"list:{name}"):
        raise ValidationError(f"There is no {kind} called {name}.")
    params = {**params, "ip": ip, "expected": expected}
    export = ExportFile.objects.create(user=acting_user, site=site, kind=kind, name=name, title=title[:300],
                                       params=params, format=format)

    def enqueue():
        from django_q.tasks import async_task
        async_task(task, export.pk, task_name=f"export #{export.pk}: {title[:60]}")
    transaction.on_commit(enqueue)
    return export


def export_take(export_id: int) -> ExportFile | None:
    """Take up a queued export for this worker: None when it is not queued any more (delivered a
    second time, swept, or deleted)."""
    taken = ExportFile.objects.filter(pk=export_id, status=E.QUEUED).update(status=E.RUNNING,
                                                                            started_at=timezone.now())
    return ExportFile.objects.select_related("user").get(pk=export_id) if taken else None


def export_fail(export: ExportFile, reason: str) -> None:
    ExportFile.objects.filter(pk=export.pk, status__in=[E.QUEUED, E.RUNNING]).update(
        status=E.FAILED, error=reason[:2000], finished_at=timezone.now())


class _Progress:
    """Count the rows as they are written; every PROGRESS_EVERY rows the count goes on the export's
    row, where "My exports" reads it (no transaction holds it: the write is visible at once)."""

    def __init__(self, rows, export: ExportFile):
        self._rows, self._export, self.count = rows, export, 0

    def __iter__(self):
        for row in self._rows:
            self.count += 1
            if self.count % PROGRESS_EVERY == 0:
                ExportFile.objects.filter(pk=self._export.pk).update(rows=self.count)
            yield row


def export_write(export: ExportFile, *, rows, columns, title: str, sheet: str, log_name: str,
                 log_filters: dict, csv_moments_as_text: bool = False) -> ExportFile:
    """Write a taken export's rows to its file (xlsx or csv, the report writers of core.exports),
    store it, mark it ready and log it as its maker's export. Whatever stops the writing marks it
    failed (and is raised again, for the task queue's record)."""
    from ..exports import write_rows

    counted = _Progress(rows, export)
    try:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as out:
            write_rows(counted, columns=columns, title=title, sheet=sheet, fmt=export.format, out=out,
                       moments_as_text=csv_moments_as_text)
            out.seek(0)
            name = f"{export.name}-{timezone.localtime(export.created_at):%Y%m%d-%H%M}.{export.format}"
            export.file.save(name, File(out, name=name), save=False)
        with transaction.atomic():
            still = ExportFile.objects.select_for_update().filter(pk=export.pk, status=E.RUNNING).exists()
            if not still:                       # swept meanwhile: what was written is not kept
                export.file.delete(save=False)
                return export
            export.status, export.rows, export.file_name = E.DONE, counted.count, name
            export.finished_at = timezone.now()
            export.save(update_fields=["status", "rows", "file", "file_name", "finished_at"])
            with audit_context(ip=export.params.get("ip")):
                export_log_record(report=log_name, filters=log_filters, format=export.format, rows=counted.count,
                                  acting_user=export.user)
    except BaseException as exc:
        export_fail(export, f"The export stopped: {type(exc).__name__}: {exc}")
        if export.file:
            try:
                export.file.delete(save=False)
            except Exception:               # the file is swept with the export later
                log.exception("could not delete the file of failed export #%s", export.pk)
        raise
    return export


def exports_sweep(*, now: datetime.datetime | None = None) -> dict:
    """End the exports whose worker died (being written longer than a task may run) or that no
    worker took up in time, and delete the files kept longer than EXPORT_KEEP_DAYS. Returns the
    counts."""
    now = now or timezone.now()
    stopped = ExportFile.objects.filter(
        status=E.RUNNING, started_at__lt=now - datetime.timedelta(seconds=settings.JOB_CLAIM_MAX_AGE)).update(
        status=E.FAILED, finished_at=now, error="The worker writing it stopped; export it again.")
    never = ExportFile.objects.filter(
        status=E.QUEUED, created_at__lt=now - datetime.timedelta(seconds=settings.JOB_START_MAX_AGE)).update(
        status=E.FAILED, finished_at=now, error="No worker took it up; export it again (is the task worker running?).")
    expired = 0
    old = ExportFile.objects.filter(status=E.DONE,
                                    finished_at__lt=now - datetime.timedelta(days=settings.EXPORT_KEEP_DAYS))
    for export in old.only("pk", "file"):
        if export.file:
            try:
                export.file.delete(save=False)
            except Exception:
                log.exception("could not delete the file of export #%s; the next sweep tries again", export.pk)
                continue
        expired += ExportFile.objects.filter(pk=export.pk, status=E.DONE).update(status=E.EXPIRED, file="")
    return {"stopped": stopped, "never_started": never, "expired": expired}


def exports_sweep_quietly(**kwargs) -> dict:
    try:
        return exports_sweep(**kwargs)
    except Exception:
        log.exception("the exports sweep failed")
        return {}
