"""python manage.py export_report NAME --format xlsx|csv --out FILE [--cycle ID] [--cohort YEAR]
[--school CODE] [--programme CODE] [--department CODE] [--since DATE] [--until DATE]
python manage.py export_report --list

The same file the report pages download (core/exports/reports.py), logged as an export made by
this command (acting as the system: there is no person behind it)."""
from __future__ import annotations

import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.exports.reports import FORMATS, write_report
from core.selectors.reports import FILTER_HELP, FILTER_NAMES, REPORTS
from core.services.exports import export_log_record


class Command(BaseCommand):
    help = "Write one report (DESIGN.md \"Reports\") as xlsx or csv; --list names them."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="The report: " + ", ".join(REPORTS))
        parser.add_argument("--list", action="store_true", dest="list_reports", help="Print the reports and what each shows.")
        parser.add_argument("--format", choices=sorted(FORMATS), default="xlsx")
        parser.add_argument("--out", help="The file to write.")
        for name in FILTER_NAMES:
            parser.add_argument(f"--{name}", help=FILTER_HELP[name])

    def handle(self, *args, name, list_reports, format, out, **options):
        if list_reports:
            for report in REPORTS.values():
                takes = ", ".join(f"--{f}" for f in report.filters)
                self.stdout.write(f"{report.name}: {report.title}. {report.description} Filters: {takes}.")
            return
        if not name:
            raise CommandError("Name a report (export_report --list shows them).")
        report = REPORTS.get(name)
        if report is None:
            raise CommandError(f"There is no report called {name!r}; the reports are: {', '.join(REPORTS)}.")
        if not out:
            raise CommandError("Say where to write it: --out FILE.")
        try:
            filters = report.parse({f: options.get(f) for f in FILTER_NAMES})
        except ValidationError as exc:
            raise CommandError("; ".join(f"--{field}: {'; '.join(messages)}"
                                         for field, messages in exc.message_dict.items())) from None
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            raise CommandError(f"Cannot write {out}: there is no folder {folder}.")
        try:
            with open(out, "wb") as fh:
                rows = write_report(report, filters, format, fh)
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror or exc}.") from None
        export_log_record(report=report.name, filters=filters.as_dict(), format=format, rows=rows, system=True,
                          made_by="command export_report")
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows} rows of {report.name} to {out}."))
