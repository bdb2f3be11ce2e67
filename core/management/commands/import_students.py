"""python manage.py import_students FILE [--dry-run] [--user EMAIL] [--skip-errors]

The registry's list of graduands from the student records system, through the same services the
registry site uses: preview, then (unless --dry-run) apply. Exit status as import_balances and
import_holds: 0 applied (or a clean dry run); 1 the file had errors and nothing was applied (or
apply was refused); 2 the file could not be read, or the import was refused (a --user who is not
the registry)."""
from __future__ import annotations

import os
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand

from core import permissions
from core.imports.balances import READABLE_KINDS
from core.services.student_imports import student_import_apply, student_import_preview

SHOW_ROWS = 200


class Command(BaseCommand):
    help = ("Import the graduands from the student records system (registration number, names, programme, school, "
            "expected graduation; optionally year of study, hostel, email, phone) from a spreadsheet: "
            + READABLE_KINDS + ", read by content, as the registry site reads uploads. Creates and updates "
            "students; never deletes one.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="Preview only: report what would change.")
        parser.add_argument("--user", help="Email of the registry officer recorded as making the change (without it, "
                                           "the change is recorded as the system's).")
        parser.add_argument("--skip-errors", action="store_true",
                            help="Apply the good rows even when some rows have errors.")

    def refuse(self, message):
        self.stderr.write(message)
        sys.exit(2)

    def handle(self, *args, file, dry_run, user, skip_errors, **options):
        acting_user = None
        if user:
            acting_user = get_user_model().objects.filter(email__iexact=user).first()
            if acting_user is None:
                self.refuse(f"No user with email {user}.")
            if not permissions.may_import_students(acting_user):
                self.refuse(f"{acting_user.email} is not the registry (or is not active); nothing was imported.")
        system = acting_user is None
        if not os.path.isfile(file):
            self.refuse(f"{file}: no such file")
        try:
            with open(file, "rb") as fh:
                si = student_import_preview(file=File(fh, name=os.path.basename(file)), acting_user=acting_user,
                                            system=system)
        except ValidationError as exc:
            self.refuse(f"{file}: " + "; ".join(exc.messages))
        self._report(si)
        if dry_run:
            sys.exit(1 if si.error_count else 0)
        if si.error_count and not skip_errors:
            self.stderr.write(f"Not applied: the file has {si.error_count} row(s) with errors; fix them or run again "
                              "with --skip-errors.")
            sys.exit(1)
        try:
            si = student_import_apply(student_import=si, acting_user=acting_user, skip_errors=skip_errors,
                                      system=system)
        except ValidationError as exc:
            self.stderr.write("Not applied: " + "; ".join(exc.messages))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(
            f"Applied graduand import #{si.pk}: {si.new_count} created, {si.changed_count} updated, "
            f"{si.unchanged_count} unchanged, {si.error_count} error(s) skipped; {si.invited_count} invited to "
            "set a password."))

    def _report(self, si):
        self.stdout.write(f"Preview of graduand import #{si.pk} ({si.original_name}): {si.rows_total} rows; "
                          f"{si.new_count} new, {si.changed_count} changed, {si.unchanged_count} unchanged, "
                          f"{si.error_count} error(s), {si.skipped_count} skipped.")
        for warning in si.warnings:
            self.stdout.write(f"Warning: {warning}")
        plan = si.plan or {}
        for _sid, reg, row, _values, diffs in plan.get("changed", [])[:SHOW_ROWS]:
            self.stdout.write(f"  changed: row {row}, {reg}: " + "; ".join(f"{f} {old} → {new}" for f, old, new in diffs))
        for kind in ("programmes", "schools"):
            for text, rows in plan.get("unknown", {}).get(kind, []):
                self.stdout.write(f"  unknown {kind[:-1]}: “{text}” (rows {', '.join(map(str, rows))})")
        for err in si.errors[:SHOW_ROWS]:
            self.stdout.write(f"  error: row {err['row']}, {err['column']}: {err['reason']}")
        if len(si.errors) > SHOW_ROWS:
            self.stdout.write(f"  … and {len(si.errors) - SHOW_ROWS} more errors")
