"""python manage.py compact_css [--check]

Writes core/static/core/compact_list.css: the rules of unfold's utilities that the lists' cells name
by one short class (clearance_admin/compact.py). Run after upgrading django-unfold; --check only
says whether the file matches the installed unfold (exit status 1 when it does not)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from clearance_admin.compact import STYLESHEET, stylesheet


class Command(BaseCommand):
    help = "Write the lists' compact stylesheet from unfold's styles.css (--check: only compare)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Compare, write nothing.")

    def handle(self, *args, check=False, **options):
        wanted = stylesheet()
        current = STYLESHEET.read_text() if STYLESHEET.exists() else None
        if check:
            if current != wanted:
                raise CommandError(f"{STYLESHEET} is out of date with the installed unfold: run compact_css.")
            self.stdout.write(f"{STYLESHEET} is current.")
            return
        STYLESHEET.write_text(wanted)
        self.stdout.write(f"Wrote {STYLESHEET} ({len(wanted):,} bytes).")
