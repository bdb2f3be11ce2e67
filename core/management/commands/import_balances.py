"""python manage.py import_balances FILE [--dry-run] [--user EMAIL] [--skip-errors]

The same services the finance site uses: preview, then (unless --dry-run) apply.
Exit status: 0 applied (or a clean dry run); 1 the file had errors and nothing was applied
(or apply was refused); 2 the file could not be read at all."""
from __future__ import annotations

import os
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from core import permissions
from core.imports.balances import READABLE_KINDS, ImportFileError
from core.services.balances import balances_import_apply, balances_import_preview

SHOW_ERRORS = 200


class Command(BaseCommand):
    help = ("Import tuition balances from a spreadsheet (preview, then apply): " + READABLE_KINDS + ", read by "
            "content, as the finance site reads uploads.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="Preview only: report what would change.")
        parser.add_argument("--user", help="Email of the finance officer recorded as making the change (without it, "
                                           "the change is recorded as the system's).")
        parser.add_argument("--skip-errors", action="store_true",
                            help="Apply the good rows even when some rows have errors.")

    def handle(self, *args, file, dry_run, user, skip_errors, **options):
        acting_user = None
        if user:
            acting_user = get_user_model().objects.filter(email__iexact=user).first()
            if acting_user is None:
                raise CommandError(f"No user with email {user}.")
            if not permissions.may_import_balances(acting_user, "change"):
                # named, the change is theirs: only someone who may import balances in /finance/
                raise CommandError(f"{acting_user.email} is not a finance officer (or not active); nothing was "
                                   "imported.")
        system = acting_user is None             # no --user: the system imports, and history says so
        if not os.path.isfile(file):
            self.stderr.write(f"{file}: no such file")
            sys.exit(2)
        try:
            with open(file, "rb") as fh:
                bi = balances_import_preview(file=File(fh, name=os.path.basename(file)), acting_user=acting_user,
                                             system=system)
        except ImportFileError as exc:
            self.stderr.write(f"{file}: {exc}")
            sys.exit(2)
        self._report(bi, "Preview")
        if dry_run:
            sys.exit(1 if bi.error_count else 0)
        if bi.error_count and not skip_errors:
            self.stderr.write(f"Not applied: the file has {bi.error_count} error(s); fix them or run again with "
                              "--skip-errors.")
            sys.exit(1)
        try:
            bi = balances_import_apply(balance_import=bi, acting_user=acting_user, skip_errors=skip_errors,
                                       system=system)
        except ValidationError as exc:
            self.stderr.write("Not applied: " + "; ".join(exc.messages))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(
            f"Applied import #{bi.pk}: {bi.updated_count} updated, {bi.unchanged_count} unchanged, "
            f"{bi.not_found_count} not found, {bi.error_count} error(s) skipped."))

    def _report(self, bi, what):
        self.stdout.write(f"{what} of import #{bi.pk} ({bi.original_name}): {bi.rows_total} rows; "
                          f"{bi.updated_count} to update, {bi.unchanged_count} unchanged, "
                          f"{bi.not_found_count} not found, {bi.error_count} error(s).")
        for warning in bi.warnings:
            if isinstance(warning, dict):          # a row read with a doubt (a blank amount read as 0)
                self.stdout.write(f"  warning: row {warning['row']}, {warning['column']}: {warning['reason']}")
            else:
                self.stdout.write(f"Warning: {warning}")
        for reg in (bi.plan or {}).get("not_found", [])[:SHOW_ERRORS]:
            self.stdout.write(f"  not found: row {reg[0]}, {reg[1]}")
        for err in bi.errors[:SHOW_ERRORS]:
            self.stdout.write(f"  error: row {err['row']}, {err['column']}: {err['reason']}")
        if len(bi.errors) > SHOW_ERRORS:
            self.stdout.write(f"  … and {len(bi.errors) - SHOW_ERRORS} more errors")
