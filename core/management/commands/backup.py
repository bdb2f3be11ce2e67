"""python manage.py backup [--keep N] [--list]

Writes one archive of the database and every stored file (core/services/backups.py) to BACKUP_DIR,
or to the bucket with BACKUP_STORAGE=s3, then deletes the oldest beyond BACKUP_KEEP. Prints where
it went, what it holds and what was deleted. Exit status 1 when it failed (nothing was written)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.services.backups import BackupError, backup_create, backups_list, destination


class Command(BaseCommand):
    help = ("Back up the database and the stored files into one archive (BACKUP_DIR, or the bucket with "
            "BACKUP_STORAGE=s3); keep the newest BACKUP_KEEP.")

    def add_arguments(self, parser):
        parser.add_argument("--keep", type=int, metavar="N",
                            help="Keep the newest N archives after this one (default BACKUP_KEEP; 0 keeps all).")
        parser.add_argument("--list", action="store_true", help="List the archives there are, oldest first.")

    def handle(self, *args, keep=None, list=False, **options):
        if list:
            names = backups_list()
            for name in names:
                self.stdout.write(name)
            self.stdout.write(f"{len(names)} backup(s) at {destination().describe('')}")
            return
        if keep is not None and keep < 0:
            raise CommandError("--keep must be 0 or more.")
        try:
            result = backup_create(keep=keep)
        except BackupError as exc:
            raise CommandError(f"Backup failed: {exc}") from exc
        self.stdout.write(result.summary())
