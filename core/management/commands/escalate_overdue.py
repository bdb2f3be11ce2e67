from django.core.management.base import BaseCommand

from core.services.reminders import escalations_send


class Command(BaseCommand):
    help = ("Email each office head the items waiting past their office's sla_days (one email per head; each "
            "item at most once a day).")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be sent; send nothing.")

    def handle(self, *args, dry_run, **options):
        escalations = escalations_send(dry_run=dry_run)
        for e in escalations:
            offices = "; ".join(f"{d.code} {len(items)} overdue" for d, items in e.offices)
            self.stdout.write(f"{'would send' if dry_run else 'sent'}: {e.head_email} — {offices}")
        self.stdout.write(f"{len(escalations)} head(s), {sum(e.count for e in escalations)} overdue item(s)"
                          + (" not yet escalated today." if dry_run else " escalated."))
