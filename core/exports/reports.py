"""A report (core/selectors/reports.py) as a file: the same writer for the command, the report
pages and the background export, so every copy of a report is the same."""
from __future__ import annotations

from django.utils import timezone

from . import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, Counted, write_rows

FORMATS = {"xlsx": XLSX_CONTENT_TYPE, "csv": CSV_CONTENT_TYPE}


def report_title(report, filters, *, now=None) -> str:
    made = timezone.localtime(now or timezone.now())
    return f"{report.title} — {filters.describe()} — made {made:%Y-%m-%d %H:%M}"


def file_name(report, fmt: str, *, now=None) -> str:
    return f"{report.name}-{timezone.localtime(now or timezone.now()):%Y%m%d-%H%M}.{fmt}"


def scoped_filters(filters, *, user, role):
    """The filters as `user` may have them on the site of `role`: office staff see what is pending
    in the offices they review only (core/permissions.py); the registry and finance everything."""
    import dataclasses

    from .. import permissions
    if role == permissions.STAFF:
        return dataclasses.replace(filters, scope=permissions.review_scope(user).q("request__student"))
    return filters


def write_report(report, filters, fmt: str, out) -> int:
    """Write the report to the binary file `out` as xlsx or csv; return the number of rows."""
    if fmt not in FORMATS:
        raise ValueError(f"no format {fmt!r}: xlsx or csv")
    as_text = fmt == "csv" and report.csv_moments_as_text
    rows = Counted(report.rows_for_csv(filters) if fmt == "csv" else report.rows(filters))
    write_rows(rows, columns=report.columns(filters), title=report_title(report, filters), sheet=report.title,
               fmt=fmt, out=out, moments_as_text=as_text)
    return rows.count
