from django.core.management.base import BaseCommand

from core.services.reminders import digests_send


class Command(BaseCommand):
    help = "Email each reviewer today's digest of what waits in their offices (once a day; only when something waits)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be sent; send nothing.")

    def handle(self, *args, dry_run, **options):
        digests = digests_send(dry_run=dry_run)
        for d in digests:
            state = "would send" if dry_run else ("sent" if d.sent else "already sent today")
            offices = "; ".join(f"{o.code} {o.waiting} waiting, {o.overdue} overdue" for o in d.offices)
            self.stdout.write(f"{state}: {d.email} — {offices}")
        self.stdout.write(f"{len(digests)} reviewer(s) with something waiting"
                          + ("" if dry_run else f", {sum(d.sent for d in digests)} digest(s) sent") + ".")
