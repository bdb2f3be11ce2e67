from django.core.management.base import BaseCommand

from core.permissions import sync_roles


class Command(BaseCommand):
    help = "Make the role groups hold exactly the permissions core/permissions.py gives them."

    def handle(self, *args, **options):
        for role, count in sync_roles().items():
            self.stdout.write(f"{role}: {count} permissions")
