"""python manage.py import_holds FILE --department CODE [--full-list] [--dry-run] [--user EMAIL] [--skip-errors]

An office's list of holds, through the same services the staff site uses: preview, then (unless
--dry-run) apply. Exit status as import_balances: 0 applied (or a clean dry run); 1 the file had
errors and nothing was applied (or apply was refused); 2 the file could not be read, or the
import was refused (no such office, a --user who may not import into it)."""
from __future__ import annotations

import os
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand

from core import permissions
from core.imports.balances import READABLE_KINDS
from core.models import Department
from core.services.hold_imports import hold_import_apply, hold_import_preview

SHOW_ROWS = 200


class Command(BaseCommand):
    help = ("Import an office's list of holds (registration number, reason, optional amount) from a spreadsheet: "
            + READABLE_KINDS + ", read by content, as the staff site reads uploads.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--department", required=True, help="The office's code (LIB, HOS …).")
        parser.add_argument("--full-list", action="store_true",
                            help="The file is the office's full list: holds earlier imports placed for a student "
                                 "and reason not in it are released (never holds placed by hand).")
        parser.add_argument("--dry-run", action="store_true", help="Preview only: report what would change.")
        parser.add_argument("--user", help="Email of the reviewer recorded as making the change (without it, the "
                                           "change is recorded as the system's).")
        parser.add_argument("--skip-errors", action="store_true",
                            help="Apply the good rows even when some rows have errors.")

    def refuse(self, message):
        self.stderr.write(message)
        sys.exit(2)

    def handle(self, *args, file, department, full_list, dry_run, user, skip_errors, **options):
        office = Department.objects.filter(code__iexact=department.strip()).first()
        if office is None:
            self.refuse(f"No office with code {department}.")
        acting_user = None
        if user:
            acting_user = get_user_model().objects.filter(email__iexact=user).first()
            if acting_user is None:
                self.refuse(f"No user with email {user}.")
            if not permissions.may_import_holds(acting_user, office):
                self.refuse(f"{acting_user.email} does not review {office.code} for every student (or is not "
                            "active); nothing was imported.")
        system = acting_user is None
        if not os.path.isfile(file):
            self.refuse(f"{file}: no such file")
        try:
            with open(file, "rb") as fh:
                hi = hold_import_preview(file=File(fh, name=os.path.basename(file)), department=office,
                                         full_list=full_list, acting_user=acting_user, system=system)
        except ValidationError as exc:          # ImportFileError, and refusals (an inactive office)
            self.refuse(f"{file}: " + "; ".join(exc.messages))
        self._report(hi)
        if dry_run:
            sys.exit(1 if hi.error_count else 0)
        if hi.error_count and not skip_errors:
            self.stderr.write(f"Not applied: the file has {hi.error_count} row(s) with errors; fix them or run again "
                              "with --skip-errors.")
            sys.exit(1)
        try:
            hi = hold_import_apply(hold_import=hi, acting_user=acting_user, skip_errors=skip_errors, system=system)
        except ValidationError as exc:
            self.stderr.write("Not applied: " + "; ".join(exc.messages))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(
            f"Applied hold import #{hi.pk} into {office.code}: {hi.placed_count} placed, {hi.updated_count} updated, "
            f"{hi.released_count} released, {hi.not_found_count} not found, {hi.error_count} error(s) skipped."))

    def _report(self, hi):
        self.stdout.write(f"Preview of hold import #{hi.pk} ({hi.original_name}) into {hi.department.code}"
                          f"{' (full list)' if hi.full_list else ''}: {hi.rows_total} rows; {hi.placed_count} to place, "
                          f"{hi.updated_count} to update, {hi.released_count} to release, {hi.unchanged_count} "
                          f"unchanged, {hi.not_found_count} not found, {hi.error_count} error(s), "
                          f"{hi.skipped_count} skipped.")
        for warning in hi.warnings:
            self.stdout.write(f"Warning: {warning}")
        plan = hi.plan or {}
        for row, reg in plan.get("not_found", [])[:SHOW_ROWS]:
            self.stdout.write(f"  not found: row {row}, {reg}")
        for err in hi.errors[:SHOW_ROWS]:
            self.stdout.write(f"  error: row {err['row']}, {err['column']}: {err['reason']}")
        if len(hi.errors) > SHOW_ROWS:
            self.stdout.write(f"  … and {len(hi.errors) - SHOW_ROWS} more errors")
