from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs):
    from .permissions import sync_roles
    sync_roles()


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Clearance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import history  # noqa: F401  (connects the audit signal)
        # Roles follow core/permissions.py after every migrate (the command does it on demand).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="core.sync_roles")
