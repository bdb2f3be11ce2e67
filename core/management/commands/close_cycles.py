from django.core.management.base import BaseCommand

from core.services.reminders import cycles_close


class Command(BaseCommand):
    help = "Close every open clearance cycle whose end date has passed."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be closed; close nothing.")

    def handle(self, *args, dry_run, **options):
        cycles = cycles_close(dry_run=dry_run)
        for c in cycles:
            self.stdout.write(f"{'would close' if dry_run else 'closed'}: {c} (ended {c.closes_on})")
        self.stdout.write(f"{len(cycles)} cycle(s) {'to close' if dry_run else 'closed'}.")
