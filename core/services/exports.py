"""Exports are logged: who made which report, with which filters, in which format, how many rows."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..history import save_tracked
from ..models import ExportLog


@transaction.atomic
def export_log_record(*, report: str, filters: dict, format: str, rows: int, acting_user=None,
                      system: bool = False, made_by: str = "") -> ExportLog:
    """Record one export. Refused (ValidationError): a report or format that does not exist, and an
    export with neither a person (`acting_user`) nor `system=True` (a command, a schedule) behind it;
    `made_by` names what made a system export (the command), 'system' when not given."""
    from ..selectors.reports import REPORTS
    if report not in REPORTS:
        raise ValidationError(f"There is no report called {report}.")
    if format not in ExportLog.Format.values:
        raise ValidationError(f"Reports are exported as xlsx or csv, not {format}.")
    if acting_user is None and not system:
        raise ValidationError("An export is made by a person or, from a command, by the system.")
    log = ExportLog(user=acting_user, made_by="" if acting_user else (made_by or "system")[:100], report=report,
                    filters=dict(filters), format=format, rows=rows)
    return save_tracked(log, user=acting_user, reason=f"exported {report} ({rows} rows)")
