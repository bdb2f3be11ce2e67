"""A report (core/selectors/reports.py) as a file: the same writer for the command, the report
pages and the background export, so every copy of a report is the same."""
from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone

from . import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, Counted, csv_chunks, xlsx_write

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


def csv_report(report, filters) -> tuple[Counted, Iterator[str]]:
    """The report as csv text in chunks, and the counter of its rows (full once the chunks are)."""
    rows = Counted(report.rows_for_csv(filters))
    return rows, csv_chunks(rows, columns=report.columns(filters), moments_as_text=report.csv_moments_as_text)


def write_report(report, filters, fmt: str, out) -> int:
    """Write the report to the binary file `out` as xlsx or csv; return the number of rows."""
    if fmt == "xlsx":
        rows = Counted(report.rows(filters))
        xlsx_write(rows, columns=report.columns(filters), title=report_title(report, filters), out=out,
                   sheet=report.title)
    elif fmt == "csv":
        rows, chunks = csv_report(report, filters)
        for chunk in chunks:
            out.write(chunk.encode("utf-8"))
    else:
        raise ValueError(f"no format {fmt!r}: xlsx or csv")
    return rows.count
