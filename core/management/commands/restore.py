"""python manage.py restore FILE|NAME|--latest [--yes] | --list

Replaces this installation's database and adds the stored files with those of a backup archive
(core/services/backups.py), after checking it: its signature (SECRET_KEY) and every checksum, the
same database vendor, no migration newer than this code's. Asks for confirmation unless --yes is
given; refuses without one when nobody is there to ask. Exit status 1 when refused or failed (the
database is then as it was)."""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.services.backups import BackupError, backup_check, backup_open, backup_restore, backup_verify, \
    backups_list, destination


class Command(BaseCommand):
    help = ("Restore the database and the stored files from a backup archive (a file, a name from --list, or "
            "--latest). The database is replaced as a whole.")

    def add_arguments(self, parser):
        parser.add_argument("archive", nargs="?", metavar="FILE", help="An archive file, or a name from --list.")
        parser.add_argument("--latest", action="store_true", help="The newest archive at the backup destination.")
        parser.add_argument("--yes", action="store_true", help="Do not ask: replace the database.")
        parser.add_argument("--list", action="store_true", help="List the archives there are, oldest first.")

    def handle(self, *args, archive=None, latest=False, yes=False, list=False, **options):
        if list:
            names = backups_list()
            for name in names:
                self.stdout.write(name)
            self.stdout.write(f"{len(names)} backup(s) at {destination().describe('')}")
            return
        if bool(archive) == latest:
            raise CommandError("Name one archive (FILE) or say --latest.")
        try:
            with backup_open(archive, latest=latest) as (name, path):
                manifest = backup_verify(path)
                backup_check(manifest, name=name)
                self.stdout.write(f"{name}: made {manifest['created_at']}, {manifest['database']['vendor']} "
                                  f"database, {len(manifest['files'])} files; signature and checksums match.")
                self._confirm(yes, name)
                result = backup_restore(name=name, path=path)
        except BackupError as exc:
            raise CommandError(f"Restore refused or failed: {exc}") from exc
        self.stdout.write(result.summary())

    def _confirm(self, yes: bool, name: str) -> None:
        if yes:
            return
        target = connection.settings_dict["NAME"]
        question = (f"This replaces the whole database ({connection.vendor} {target}) with {name}, and writes its "
                    "files into the storage. Type 'yes' to go on: ")
        if not sys.stdin.isatty():
            raise CommandError(f"Restore refused: confirm with --yes (no terminal to ask on). It would replace the "
                               f"whole database ({connection.vendor} {target}).")
        if input(question).strip().lower() != "yes":
            raise CommandError("Restore cancelled; nothing was changed.")
